package dev.owlery.engine.sampling;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * One request's token chooser, in HF 4.31 order (spec §7): repetition penalty over the context seen
 * so far, presence and frequency penalties over the tokens generated so far (vLLM), then greedy
 * argmax, or temperature, top-k, top-p, min-p, softmax and a multinomial draw from the request's own
 * seeded generator. Work arrays are allocated once per request, nothing per token.
 * Not thread-safe.
 */
public final class Sampler {

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
    int token = params.doSample() ? draw() : argmax(scores, vocabSize);
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

  private int draw() {
    float temperature = params.temperature();
    for (int i = 0; i < vocabSize; i++) {
      scores[i] = scores[i] / temperature;
    }
    if (params.topK() > 0) {
      applyTopK(Math.min(params.topK(), vocabSize));
    }
    if (params.topP() < 1f) {
      applyTopP(params.topP());
    }
    if (params.minP() > 0f) {
      applyMinP(params.minP());
    }
    return multinomial();
  }

  /** HF TopKLogitsWarper: drop scores below the k-th largest (ties with it are kept). */
  private void applyTopK(int k) {
    sortAscending();
    float kth = scores[(int) order[vocabSize - k]];
    for (int i = 0; i < vocabSize; i++) {
      if (scores[i] < kth) {
        scores[i] = Float.NEGATIVE_INFINITY;
      }
    }
  }

  /**
   * HF TopPLogitsWarper: sort ascending, drop tokens whose cumulative probability is {@code <= 1 - topP},
   * always keep the most likely one. Ties are ordered by id.
   */
  private void applyTopP(float topP) {
    sortAscending();
    float max = scores[(int) order[vocabSize - 1]];
    double sum = 0;
    for (int i = 0; i < vocabSize; i++) {
      sum += Math.exp(scores[i] - max);
    }
    double cumulative = 0;
    for (int rank = 0; rank < vocabSize - 1; rank++) {
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
  private void applyMinP(float minP) {
    float max = scores[argmax(scores, vocabSize)];
    for (int i = 0; i < vocabSize; i++) {
      if (Math.exp(scores[i] - max) < minP) {
        scores[i] = Float.NEGATIVE_INFINITY;
      }
    }
  }

  /** Softmax of the warped scores and one draw from it. */
  private int multinomial() {
    float max = scores[argmax(scores, vocabSize)];
    double sum = 0;
    for (int i = 0; i < vocabSize; i++) {
      sum += Math.exp(scores[i] - max);
    }
    double u = random.nextDouble() * sum;
    double cumulative = 0;
    int last = 0;
    for (int i = 0; i < vocabSize; i++) {
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

  /** Fills {@link #order} with ids sorted by ascending score (then ascending id), without boxing. */
  private void sortAscending() {
    for (int i = 0; i < vocabSize; i++) {
      int bits = Float.floatToIntBits(scores[i]);
      int key = bits ^ ((bits >> 31) & 0x7fffffff); // monotone in the float value
      order[i] = ((long) key << 32) | i;
    }
    Arrays.sort(order, 0, vocabSize);
  }
}
