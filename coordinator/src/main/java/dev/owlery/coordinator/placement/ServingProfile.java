package dev.owlery.coordinator.placement;

import java.util.Locale;

/**
 * What the shard workers of a cluster compute on, and the serving defaults that follow from it:
 * how many sequences a group runs at once, how many rows a step carries, and the FLOP/s the step
 * pacer assumes of a shard before it has timed a step. {@code owlery coordinator --profile}; the
 * explicit batch flags override the profile's.
 *
 * @param maxNumSequences sequences a group runs at once (vLLM's {@code max_num_seqs})
 * @param maxNumBatchedTokens rows one step carries (vLLM's {@code max_num_batched_tokens})
 * @param priorFlopsPerSecond a shard's speed assumed before the first step is timed
 */
public enum ServingProfile {
  /** Shards on CPU cores: small batches, a slow core's 1 GFLOP/s. */
  CPU(16, 512, 1e9),
  /**
   * Shards on a GPU each: vLLM's batch defaults for a GPU (256 sequences, 8,192 rows), and 100
   * TFLOP/s, a tenth of an H100's or H200's dense F16 peak, so that the first prefill chunks are
   * neither tiny nor past the step deadline.
   */
  GPU(256, 8192, 1e14);

  private final int maxNumSequences;
  private final int maxNumBatchedTokens;
  private final double priorFlopsPerSecond;

  ServingProfile(int maxNumSequences, int maxNumBatchedTokens, double priorFlopsPerSecond) {
    this.maxNumSequences = maxNumSequences;
    this.maxNumBatchedTokens = maxNumBatchedTokens;
    this.priorFlopsPerSecond = priorFlopsPerSecond;
  }

  public int maxNumSequences() {
    return maxNumSequences;
  }

  public int maxNumBatchedTokens() {
    return maxNumBatchedTokens;
  }

  public double priorFlopsPerSecond() {
    return priorFlopsPerSecond;
  }

  /** The profile named {@code value} (cpu or gpu, any case), or a sentence naming {@code flag}. */
  public static ServingProfile parse(String flag, String value) {
    for (ServingProfile profile : values()) {
      if (profile.name().equalsIgnoreCase(value)) {
        return profile;
      }
    }
    throw new IllegalArgumentException("%s must be cpu or gpu. Given: %s".formatted(flag, value));
  }

  /** The flag's spelling: cpu, gpu. */
  public String flagName() {
    return name().toLowerCase(Locale.ROOT);
  }
}
