package dev.owlery.engine.sampling;

/**
 * How one request picks tokens, with HF 4.31 meanings (spec §7).
 *
 * @param doSample false: greedy argmax (lowest id on ties); true: multinomial over the warped distribution
 * @param temperature divides the logits before top-k/top-p; > 0 (ignored when greedy)
 * @param topK keep the k highest logits (ties with the k-th kept); 0 disables
 * @param topP keep the smallest set of most likely tokens whose probability exceeds topP; in (0, 1], 1 disables
 * @param repetitionPenalty HF {@code repetition_penalty} on every token of the context; 1 disables
 * @param seed seeds the request's own random generator, so equal seeds give equal tokens
 */
public record SamplingParams(
    boolean doSample, float temperature, int topK, float topP, float repetitionPenalty, long seed) {

  public SamplingParams {
    if (doSample && !(temperature > 0 && Float.isFinite(temperature))) {
      throw new IllegalArgumentException("temperature must be a finite value > 0 when sampling, got " + temperature);
    }
    if (topK < 0) {
      throw new IllegalArgumentException("top_k must be >= 0 (0 disables it), got " + topK);
    }
    if (!(topP > 0 && topP <= 1)) {
      throw new IllegalArgumentException("top_p must be in (0, 1], got " + topP);
    }
    if (!(repetitionPenalty > 0 && Float.isFinite(repetitionPenalty))) {
      throw new IllegalArgumentException("repetition_penalty must be a finite value > 0, got " + repetitionPenalty);
    }
  }

  /** Greedy decoding (HF {@code do_sample=False}), no repetition penalty. */
  public static SamplingParams greedy() {
    return new SamplingParams(false, 1f, 0, 1f, 1f, 0L);
  }

  /** Multinomial sampling with HF's implicit top_k 50 and no repetition penalty. */
  public static SamplingParams sample(float temperature, float topP, long seed) {
    return new SamplingParams(true, temperature, 50, topP, 1f, seed);
  }
}
