package dev.owlery.coordinator.placement;

import java.time.Duration;

/**
 * How the coordinator forms shard groups and what it asks each shard to hold.
 *
 * @param worldSize shard workers per tensor-parallel group, >= 1 (must divide the model's heads
 *     and kv heads; the shards check at LoadSlice)
 * @param shardModelDir LoadSlice's model_dir: the checkpoint folder as the shards see it
 * @param maxNumSequences sequences whose KV cache a group holds at once (KV blocks are sized for
 *     this many full-context sequences), and most sequences per RunStep, >= 1
 * @param blockSizeTokens positions per KV block, >= 1
 * @param maxNumTokens most rows one RunStep carries (longer prompts are prefilled in chunks), >= 1
 * @param loadTimeout deadline of LoadSlice (mapping and checking a slice of a 7B model takes a while)
 * @param healthTimeout deadline of RunHealthStep
 * @param quarantine how long a shard that failed a step, a load or a health check is passed over
 *     while other shards are free
 */
public record PlacementConfig(
    int worldSize,
    String shardModelDir,
    int maxNumSequences,
    int blockSizeTokens,
    int maxNumTokens,
    Duration loadTimeout,
    Duration healthTimeout,
    Duration quarantine) {

  public PlacementConfig {
    requirePositive("worldSize", worldSize);
    if (shardModelDir == null || shardModelDir.isBlank()) {
      throw new IllegalArgumentException("shardModelDir must not be blank. Given: '" + shardModelDir + "'");
    }
    requirePositive("maxNumSequences", maxNumSequences);
    requirePositive("blockSizeTokens", blockSizeTokens);
    requirePositive("maxNumTokens", maxNumTokens);
    requirePositive("loadTimeout", loadTimeout);
    requirePositive("healthTimeout", healthTimeout);
    if (quarantine == null || quarantine.isNegative()) {
      throw new IllegalArgumentException("quarantine must be a duration >= 0. Given: " + quarantine);
    }
  }

  /**
   * Groups of {@code worldSize} loading {@code shardModelDir}: one sequence at a time, 16-position
   * blocks, 512-row steps, 10 min to load, 10 s for a health step, 30 s quarantine.
   */
  public static PlacementConfig of(int worldSize, String shardModelDir) {
    return new PlacementConfig(worldSize, shardModelDir, 1, 16, 512, Duration.ofMinutes(10), Duration.ofSeconds(10),
        Duration.ofSeconds(30));
  }

  /** KV blocks per group: {@link #maxNumSequences} sequences of {@code maxPositions} positions. */
  public int numKvBlocks(int maxPositions) {
    return Math.multiplyExact(maxNumSequences, Math.ceilDiv(maxPositions, blockSizeTokens));
  }

  private static void requirePositive(String name, int value) {
    if (value < 1) {
      throw new IllegalArgumentException(name + " must be >= 1. Given: " + value);
    }
  }

  static void requirePositive(String name, Duration value) {
    if (value == null || value.isNegative() || value.isZero()) {
      throw new IllegalArgumentException(name + " must be a positive duration. Given: " + value);
    }
  }
}
