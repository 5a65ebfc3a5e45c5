package dev.owlery.engine.sampling;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * One request's token chooser, in HF 4.31 order (spec §7): repetition penalty over the context seen
 * so far, presence and frequency penalties over the tokens generated so far (vLLM), then greedy
 * argmax, or temperature, top-k, top-p, min-p, softmax and a multinomial draw from the request's own
 * seeded generator. Work arrays are allocated once per request, nothing per token.
 *
 * <p>Without penalties, a greedy or top-k sampler can also choose from a {@link CandidateRow} (the
 * ranks' {@link TopCandidates}) instead of the whole row, and picks the same token with the same
 * draw: the warpers run over the candidates in id order exactly as over the whole row, where every
 * token outside them is dropped by top-k and adds an exact 0 to every sum. Not thread-safe.
 */
public final class Sampler {

  /** Most candidates per rank a sampler asks for; a larger top-k or top_logprobs takes the whole row. */
  public static final int MAX_CANDIDATES = 128;

  private final SamplingParams params;
  private final int vocabSize;
  private final SplittableRandom random;
  private final boolean[] seen;
  // Times each token was generated (sampled), for the presence and frequency penalties.
  private final int[] generatedCounts;
  private final float[] scores;
  private final long[] order;

  public Sampler(SamplingParams params, int vocabSize) {
    this.params = params;
    this.vocabSize = vocabSize;
    this.random = new SplittableRandom(params.seed());
    this.seen = new boolean[vocabSize];
    this.generatedCounts = new int[vocabSize];
    this.scores = new float[vocabSize];
    this.order = new long[vocabSize];
  }

  /**
   * The candidates per rank ({@link TopCandidates}) from which this sampler picks exactly as from
   * the whole row and which hold the chosen token's and the {@code numTopLogprobs} most likely
   * tokens' log-probabilities; 0 when it needs the whole row: with a penalty (it may lift a token
   * from outside the candidates), when sampling without top-k (top-p, min-p and the draw need the
   * whole distribution), or past {@link #MAX_CANDIDATES}.
   */
  public int numCandidates(int numTopLogprobs) {
    if (params.repetitionPenalty() != 1f || params.presencePenalty() != 0f || params.frequencyPenalty() != 0f
        || (params.doSample() && params.topK() == 0)) {
      return 0;
    }
    int needed = Math.max(params.doSample() ? params.topK() : 1, numTopLogprobs);
    return needed > MAX_CANDIDATES ? 0 : Math.min(needed, vocabSize);
  }

  /** The temperature the ranks divide by to keep the k-th candidate's ties: the request's, 1 when greedy. */
  public float candidateTemperature() {
    return params.doSample() ? params.temperature() : 1f;
  }

  /**
   * Picks a token from {@code row}, the candidates of {@link #numCandidates} (or more) per rank, as
   * {@link #sample(float[], int[])} picks it from the whole row, and records it as context.
   */
  public int sample(CandidateRow row) {
    if (numCandidates(0) == 0) {
      throw new IllegalStateException("this sampler (%s) needs the whole logit row, not candidates".formatted(params));
    }
    int n = row.size();
    row.copyLogits(scores);
    int token = row.tokenId(params.doSample() ? draw(n) : argmax(scores, n));
    seen[token] = true;
    generatedCounts[token]++;
    return token;
  }

  /** Adds context tokens (the prompt) for the repetition penalty; sampled tokens are added by {@link #sample}. */
  public void observe(int... tokenIds) {
    for (int id : tokenIds) {
      if (id >= 0 && id < vocabSize) {
        seen[id] = true;
      }
    }
  }

  /**
   * Picks a token from {@code logits[0, vocabSize)} (left unchanged), never one of
   * {@code forbiddenIds} (e.g. EOS before {@code min_new_tokens}), and records it as context.
   */
  public int sample(float[] logits, int[] forbiddenIds) {
    System.arraycopy(logits, 0, scores, 0, vocabSize);
    for (int id : forbiddenIds) {
      scores[id] = Float.NEGATIVE_INFINITY;
    }
    applyRepetitionPenalty();
    applyPresenceAndFrequencyPenalties();
    int token = params.doSample() ? draw(vocabSize) : argmax(scores, vocabSize);
    seen[token] = true;
    generatedCounts[token]++;
    return token;
  }

  /** Index of the largest of {@code x[0, n)}; the lowest index wins ties. */
  public static int argmax(float[] x, int n) {
    return argmax(x, 0, n);
  }

  /** Index, counted from {@code offset}, of the largest of {@code x[offset, offset + n)}; the lowest index wins ties. */
  public static int argmax(float[] x, int offset, int n) {
    int best = 0;
    for (int i = 1; i < n; i++) {
      if (x[offset + i] > x[offset + best]) {
        best = i;
      }
    }
    return best;
  }

  /** HF RepetitionPenaltyLogitsProcessor: negative scores are multiplied by the penalty, others divided. */
  private void applyRepetitionPenalty() {
    float penalty = params.repetitionPenalty();
    if (penalty == 1f) {
      return;
    }
    for (int i = 0; i < vocabSize; i++) {
      if (seen[i]) {
        scores[i] = scores[i] < 0 ? scores[i] * penalty : scores[i] / penalty;
      }
    }
  }

  /**
   * vLLM: {@code logits -= frequency_penalty * count + presence_penalty * (count > 0)} over the
   * tokens generated so far.
   */
  private void applyPresenceAndFrequencyPenalties() {
    float presence = params.presencePenalty();
    float frequency = params.frequencyPenalty();
    if (presence == 0f && frequency == 0f) {
      return;
    }
    for (int i = 0; i < vocabSize; i++) {
      int count = generatedCounts[i];
      if (count > 0) {
        scores[i] -= frequency * count + presence;
      }
    }
  }

  /** Warps {@code scores[0, n)} and draws from them; returns the index drawn. */
  private int draw(int n) {
    float temperature = params.temperature();
    for (int i = 0; i < n; i++) {
      scores[i] = scores[i] / temperature;
    }
    if (params.topK() > 0) {
      applyTopK(Math.min(params.topK(), n), n);
    }
    if (params.topP() < 1f) {
      applyTopP(params.topP(), n);
    }
    if (params.minP() > 0f) {
      applyMinP(params.minP(), n);
    }
    return multinomial(n);
  }

  /** HF TopKLogitsWarper: drop scores below the k-th largest (ties with it are kept). */
  private void applyTopK(int k, int n) {
    sortAscending(n);
    float kth = scores[(int) order[n - k]];
    for (int i = 0; i < n; i++) {
      if (scores[i] < kth) {
        scores[i] = Float.NEGATIVE_INFINITY;
      }
    }
  }

  /**
   * HF TopPLogitsWarper: sort ascending, drop tokens whose cumulative probability is {@code <= 1 - topP},
   * always keep the most likely one. Ties are ordered by id.
   */
  private void applyTopP(float topP, int n) {
    sortAscending(n);
    float max = scores[(int) order[n - 1]];
    double sum = 0;
    for (int i = 0; i < n; i++) {
      sum += Math.exp(scores[i] - max);
    }
    double cumulative = 0;
    for (int rank = 0; rank < n - 1; rank++) {
      int id = (int) order[rank];
      cumulative += Math.exp(scores[id] - max) / sum;
      if (cumulative > 1 - topP) {
        break;
      }
      scores[id] = Float.NEGATIVE_INFINITY;
    }
  }

  /**
   * HF MinPLogitsWarper: drop tokens whose probability is below {@code minP} times the largest
   * one; as a ratio of probabilities, {@code exp(score - max) < minP}. The most likely token stays.
   */
  private void applyMinP(float minP, int n) {
    float max = scores[argmax(scores, n)];
    for (int i = 0; i < n; i++) {
      if (Math.exp(scores[i] - max) < minP) {
        scores[i] = Float.NEGATIVE_INFINITY;
      }
    }
  }

  /** Softmax of the warped scores and one draw from it. */
  private int multinomial(int n) {
    float max = scores[argmax(scores, n)];
    double sum = 0;
    for (int i = 0; i < n; i++) {
      sum += Math.exp(scores[i] - max);
    }
    double u = random.nextDouble() * sum;
    double cumulative = 0;
    int last = 0;
    for (int i = 0; i < n; i++) {
      double p = Math.exp(scores[i] - max);
      if (p > 0) {
        cumulative += p;
        last = i;
        if (u < cumulative) {
          return i;
        }
      }
    }
    return last; // rounding left u at the very top: the last token with any probability
  }

  /** Fills {@link #order}[0, n) with indexes of {@code scores[0, n)} sorted by ascending score (then ascending id), without boxing. */
  private void sortAscending(int n) {
    for (int i = 0; i < n; i++) {
      int bits = Float.floatToIntBits(scores[i]);
      int key = bits ^ ((bits >> 31) & 0x7fffffff); // monotone in the float value
      order[i] = ((long) key << 32) | i;
    }
    Arrays.sort(order, 0, n);
  }
}
