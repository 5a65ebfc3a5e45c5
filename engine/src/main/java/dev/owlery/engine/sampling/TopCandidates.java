package dev.owlery.engine.sampling;

/**
 * What a rank of a vocabulary-parallel lm_head sends instead of its slice of a logit row when the
 * coordinator's sampler can choose from candidates ({@link Sampler#numCandidates}): the slice's
 * {@code k} largest logits, with every further logit that ties with the k-th once divided by the
 * request's temperature (so the coordinator's top-k keeps exactly the tokens the whole row would
 * keep), and the slice's log-sum-exp (so log-probabilities stay exact over the whole vocabulary).
 * The plain twin is {@link Sampler#sample(float[], int[])} over the gathered row; {@code
 * CandidateSamplingTest} holds the two to the same tokens.
 */
public final class TopCandidates {

  private TopCandidates() {}

  /**
   * Writes into {@code indexes}, ascending, the indexes (from 0) of the candidates of {@code
   * logits[offset, offset + width)}: all of them when {@code k >= width}, else every logit {@code x}
   * with {@code x / temperature >= kth / temperature} (float32 division, as the sampler divides),
   * {@code kth} being the k-th largest. Returns how many; {@code indexes} needs {@code width} room.
   *
   * @param heap scratch of at least {@code k} floats
   */
  public static int select(float[] logits, int offset, int width, int k, float temperature, int[] indexes,
      float[] heap) {
    if (k < 1) {
      throw new IllegalArgumentException("the number of candidates must be >= 1. Given: " + k);
    }
    if (!(temperature > 0 && Float.isFinite(temperature))) {
      throw new IllegalArgumentException("the candidates' temperature must be a finite value > 0. Given: " + temperature);
    }
    if (k >= width) {
      for (int i = 0; i < width; i++) {
        indexes[i] = i;
      }
      return width;
    }
    float threshold = kthLargest(logits, offset, width, k, heap) / temperature;
    int count = 0;
    for (int i = 0; i < width; i++) {
      if (logits[offset + i] / temperature >= threshold) {
        indexes[count++] = i;
      }
    }
    return count;
  }

  /** log(sum exp(x)) over {@code logits[offset, offset + width)}, as {@link TokenLogprobs#of} normalizes. */
  public static double logSumExp(float[] logits, int offset, int width) {
    float max = Float.NEGATIVE_INFINITY;
    for (int i = 0; i < width; i++) {
      max = Math.max(max, logits[offset + i]);
    }
    double sum = 0;
    for (int i = 0; i < width; i++) {
      sum += Math.exp(logits[offset + i] - max);
    }
    return max + Math.log(sum);
  }

  /** The k-th largest value, through a min-heap of the k largest seen (k < width). */
  private static float kthLargest(float[] logits, int offset, int width, int k, float[] heap) {
    for (int i = 0; i < k; i++) {
      heap[i] = logits[offset + i];
      siftUp(heap, i);
    }
    for (int i = k; i < width; i++) {
      float x = logits[offset + i];
      if (x > heap[0]) {
        heap[0] = x;
        siftDown(heap, k);
      }
    }
    return heap[0];
  }

  private static void siftUp(float[] heap, int i) {
    float x = heap[i];
    while (i > 0) {
      int parent = (i - 1) >>> 1;
      if (heap[parent] <= x) {
        break;
      }
      heap[i] = heap[parent];
      i = parent;
    }
    heap[i] = x;
  }

  private static void siftDown(float[] heap, int size) {
    float x = heap[0];
    int i = 0;
    for (int child; (child = 2 * i + 1) < size; i = child) {
      if (child + 1 < size && heap[child + 1] < heap[child]) {
        child++;
      }
      if (heap[child] >= x) {
        break;
      }
      heap[i] = heap[child];
    }
    heap[i] = x;
  }
}
