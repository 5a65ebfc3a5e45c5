package dev.owlery.engine.sampling;

/**
 * How one request picks tokens, with HF 4.31 meanings (spec §7) plus vLLM's min-p, presence and
 * frequency penalties.
 *
 * @param doSample false: greedy argmax (lowest id on ties); true: multinomial over the warped distribution
 * @param temperature divides the logits before top-k/top-p/min-p; > 0 (ignored when greedy)
 * @param topK keep the k highest logits (ties with the k-th kept); 0 disables
 * @param topP keep the smallest set of most likely tokens whose probability exceeds topP; in (0, 1], 1 disables
 * @param minP after temperature, top-k and top-p, keep tokens whose probability is {@code >= minP *} the
 *     largest probability (HF {@code MinPLogitsWarper}, vLLM {@code min_p}); in [0, 1], 0 disables (ignored when greedy)
 * @param repetitionPenalty HF {@code repetition_penalty} on every token of the context; 1 disables
 * @param presencePenalty vLLM {@code presence_penalty}: subtracted once from the logit of every token
 *     generated so far (not the prompt); in [-2, 2], 0 disables
 * @param frequencyPenalty vLLM {@code frequency_penalty}: subtracted from a token's logit once per
 *     time it was generated so far (not the prompt); in [-2, 2], 0 disables
 * @param seed seeds the request's own random generator, so equal seeds give equal tokens
 */
public record SamplingParams(boolean doSample, float temperature, int topK, float topP, float minP,
    float repetitionPenalty, float presencePenalty, float frequencyPenalty, long seed) {

  /** Largest magnitude of presence and frequency penalties (vLLM's bound). */
  public static final float MAX_PENALTY = 2f;

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
    if (!(minP >= 0 && minP <= 1)) {
      throw new IllegalArgumentException("min_p must be in [0, 1] (0 disables it), got " + minP);
    }
    if (!(repetitionPenalty > 0 && Float.isFinite(repetitionPenalty))) {
      throw new IllegalArgumentException("repetition_penalty must be a finite value > 0, got " + repetitionPenalty);
    }
    if (!(presencePenalty >= -MAX_PENALTY && presencePenalty <= MAX_PENALTY)) {
      throw new IllegalArgumentException("presence_penalty must be in [-2, 2] (0 disables it), got " + presencePenalty);
    }
    if (!(frequencyPenalty >= -MAX_PENALTY && frequencyPenalty <= MAX_PENALTY)) {
      throw new IllegalArgumentException(
          "frequency_penalty must be in [-2, 2] (0 disables it), got " + frequencyPenalty);
    }
  }

  /** The HF 4.31 parameters only: no min-p, no presence or frequency penalty. */
  public SamplingParams(boolean doSample, float temperature, int topK, float topP, float repetitionPenalty, long seed) {
    this(doSample, temperature, topK, topP, 0f, repetitionPenalty, 0f, 0f, seed);
  }

  /** Greedy decoding (HF {@code do_sample=False}), no repetition penalty. */
  public static SamplingParams greedy() {
    return new SamplingParams(false, 1f, 0, 1f, 1f, 0L);
  }

  /** Multinomial sampling with HF's implicit top_k 50 and no repetition penalty. */
  public static SamplingParams sample(float temperature, float topP, long seed) {
    return new SamplingParams(true, temperature, 50, topP, 1f, seed);
  }

  /** These parameters with {@code min_p} set. */
  public SamplingParams withMinP(float value) {
    return new SamplingParams(doSample, temperature, topK, topP, value, repetitionPenalty, presencePenalty,
        frequencyPenalty, seed);
  }

  /** These parameters with {@code presence_penalty} and {@code frequency_penalty} set. */
  public SamplingParams withPenalties(float presence, float frequency) {
    return new SamplingParams(doSample, temperature, topK, topP, minP, repetitionPenalty, presence, frequency, seed);
  }
}
