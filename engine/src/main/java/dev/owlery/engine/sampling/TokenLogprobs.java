package dev.owlery.engine.sampling;

import java.util.Arrays;

/**
 * Natural-log probabilities of the unmodified distribution (log-softmax of the raw logits, before
 * temperature, top-k, top-p or penalties): the chosen token's and the {@code n} most likely
 * alternatives, highest first, ties by lowest id.
 *
 * @param topTokenIds the {@code n} most likely ids
 * @param topLogprobs their log-probabilities, same order
 */
public record TokenLogprobs(int tokenId, float logprob, int[] topTokenIds, float[] topLogprobs) {

  public TokenLogprobs {
    topTokenIds = topTokenIds.clone();
    topLogprobs = topLogprobs.clone();
  }

  @Override
  public int[] topTokenIds() {
    return topTokenIds.clone();
  }

  @Override
  public float[] topLogprobs() {
    return topLogprobs.clone();
  }

  /** Log-probabilities of {@code tokenId} and the top {@code n} of {@code vocabSize} logits from {@code offset}. */
  public static TokenLogprobs of(float[] logits, int offset, int vocabSize, int tokenId, int n) {
    if (tokenId < 0 || tokenId >= vocabSize) {
      throw new IllegalArgumentException("token id %d is outside [0, %d)".formatted(tokenId, vocabSize));
    }
    if (n < 0 || n > vocabSize) {
      throw new IllegalArgumentException("number of top log-probabilities must be in [0, %d], got %d".formatted(vocabSize, n));
    }
    float max = Float.NEGATIVE_INFINITY;
    for (int i = 0; i < vocabSize; i++) {
      max = Math.max(max, logits[offset + i]);
    }
    double sum = 0;
    for (int i = 0; i < vocabSize; i++) {
      sum += Math.exp(logits[offset + i] - max);
    }
    double logNormalizer = max + Math.log(sum);
    int[] top = new int[n];
    float[] topValues = new float[n];
    Arrays.fill(topValues, Float.NEGATIVE_INFINITY);
    Arrays.fill(top, -1);
    for (int i = 0; i < vocabSize; i++) {
      insert(top, topValues, i, logits[offset + i]);
    }
    float[] topLogprobs = new float[n];
    for (int j = 0; j < n; j++) {
      topLogprobs[j] = (float) (topValues[j] - logNormalizer);
    }
    return new TokenLogprobs(tokenId, (float) (logits[offset + tokenId] - logNormalizer), top, topLogprobs);
  }

  /**
   * Log-probabilities of {@code tokenId} and the top {@code n} of a candidate row (the top {@code
   * n} of the whole row when every rank sent at least {@code n} candidates), normalized by the
   * row's merged log-sum-exp; ties by lowest id, as {@link #of(float[], int, int, int, int)}.
   */
  public static TokenLogprobs of(CandidateRow row, int tokenId, int n) {
    if (n < 0 || n > row.size()) {
      throw new IllegalArgumentException("number of top log-probabilities must be in [0, %d], got %d".formatted(row.size(), n));
    }
    float tokenLogit = Float.NaN;
    int[] top = new int[n];
    float[] topValues = new float[n];
    Arrays.fill(topValues, Float.NEGATIVE_INFINITY);
    Arrays.fill(top, -1);
    for (int i = 0; i < row.size(); i++) {
      float v = row.logit(i);
      if (row.tokenId(i) == tokenId) {
        tokenLogit = v;
      }
      insert(top, topValues, row.tokenId(i), v);
    }
    if (Float.isNaN(tokenLogit)) {
      throw new IllegalArgumentException("token id %d is not among the row's %d candidates".formatted(tokenId, row.size()));
    }
    double logNormalizer = row.logSumExp();
    float[] topLogprobs = new float[n];
    for (int j = 0; j < n; j++) {
      topLogprobs[j] = (float) (topValues[j] - logNormalizer);
    }
    return new TokenLogprobs(tokenId, (float) (tokenLogit - logNormalizer), top, topLogprobs);
  }

  /**
   * Puts {@code id} with value {@code v} into the descending top list when it beats the last one;
   * an equal value stays behind the earlier ids (ties by lowest id when ids come in order).
   */
  private static void insert(int[] top, float[] topValues, int id, float v) {
    int n = top.length;
    if (n == 0 || !(v > topValues[n - 1])) {
      return;
    }
    int j = n - 1;
    while (j > 0 && v > topValues[j - 1]) {
      topValues[j] = topValues[j - 1];
      top[j] = top[j - 1];
      j--;
    }
    topValues[j] = v;
    top[j] = id;
  }
}
