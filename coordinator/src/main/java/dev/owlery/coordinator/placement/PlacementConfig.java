package dev.owlery.coordinator.placement;

import dev.owlery.engine.kv.KvCacheDtype;
import java.time.Duration;

/**
 * How the coordinator forms shard groups and what it asks each shard to hold.
 *
 * @param worldSize shard workers per tensor-parallel group, >= 1 (must divide the model's heads
 *     and kv heads; the shards check at LoadSlice)
 * @param shardModelDir LoadSlice's model_dir: the checkpoint folder as the shards see it
 * @param maxNumSequences sequences a group runs at once (one batch, each step carries all of
 *     them), >= 1
 * @param blockSizeTokens positions per KV block, >= 1
 * @param maxNumTokens most rows one RunStep carries: the token budget of a step (decode rows first,
 *     prompts prefilled in chunks within what is left), >= 1
 * @param kvCacheTokens KV pool of each group in positions (all sequences together), >= 0; 0 = sized
 *     by {@code kvCacheBytes}, or when that is 0 too, by the shards' memory (see {@link #numKvBlocks})
 * @param kvCacheBytes KV pool in bytes on each shard worker, >= 0; 0 = sized by {@code kvCacheTokens};
 *     at most one of the two may be set
 * @param kvCacheDtype how the shards store keys and values (and what a position's bytes are)
 * @param loadTimeout deadline of LoadSlice (mapping and checking a slice of a 7B model takes a while)
 * @param healthTimeout deadline of RunHealthStep
 * @param quarantine how long a shard that failed a step, a load or a health check is passed over
 *     while other shards are free
 * @param maxGroups groups to form at most, >= 0; 0 = one for every {@code worldSize} free shard
 *     workers. Shard workers beyond what the groups need stay free as standbys, and fill a rank the
 *     moment it is lost.
 */
public record PlacementConfig(
    int worldSize,
    String shardModelDir,
    int maxNumSequences,
    int blockSizeTokens,
    int maxNumTokens,
    long kvCacheTokens,
    long kvCacheBytes,
    KvCacheDtype kvCacheDtype,
    Duration loadTimeout,
    Duration healthTimeout,
    Duration quarantine,
    int maxGroups) {

  public PlacementConfig {
    requirePositive("worldSize", worldSize);
    if (shardModelDir == null || shardModelDir.isBlank()) {
      throw new IllegalArgumentException("shardModelDir must not be blank. Given: '" + shardModelDir + "'");
    }
    requirePositive("maxNumSequences", maxNumSequences);
    requirePositive("blockSizeTokens", blockSizeTokens);
    requirePositive("maxNumTokens", maxNumTokens);
    if (kvCacheTokens < 0 || kvCacheBytes < 0 || (kvCacheTokens > 0 && kvCacheBytes > 0)) {
      throw new IllegalArgumentException("kvCacheTokens and kvCacheBytes must be >= 0 and at most one set. Given: "
          + kvCacheTokens + ", " + kvCacheBytes);
    }
    if (kvCacheDtype == null) {
      throw new IllegalArgumentException("kvCacheDtype must be set");
    }
    requirePositive("loadTimeout", loadTimeout);
    requirePositive("healthTimeout", healthTimeout);
    if (quarantine == null || quarantine.isNegative()) {
      throw new IllegalArgumentException("quarantine must be a duration >= 0. Given: " + quarantine);
    }
    if (maxGroups < 0) {
      throw new IllegalArgumentException("maxGroups must be >= 0. Given: " + maxGroups);
    }
  }

  /**
   * Groups of {@code worldSize} loading {@code shardModelDir}: {@link ServingProfile#CPU}'s batches
   * (up to 16 sequences, 512-row steps), 16-position blocks, the default KV pool of the default dtype, 10 min to load, 10 s for a health step,
   * 30 s quarantine, as many groups as the shard workers make.
   */
  public static PlacementConfig of(int worldSize, String shardModelDir) {
    return new PlacementConfig(worldSize, shardModelDir, ServingProfile.CPU.maxNumSequences(), 16,
        ServingProfile.CPU.maxNumBatchedTokens(), 0, 0, KvCacheDtype.DEFAULT,
        Duration.ofMinutes(10), Duration.ofSeconds(10), Duration.ofSeconds(30), 0);
  }

  public PlacementConfig withMaxGroups(int newMaxGroups) {
    return new PlacementConfig(worldSize, shardModelDir, maxNumSequences, blockSizeTokens, maxNumTokens, kvCacheTokens,
        kvCacheBytes, kvCacheDtype, loadTimeout, healthTimeout, quarantine, newMaxGroups);
  }

  public PlacementConfig withBatch(int newMaxNumSequences, int newMaxNumTokens) {
    return new PlacementConfig(worldSize, shardModelDir, newMaxNumSequences, blockSizeTokens, newMaxNumTokens,
        kvCacheTokens, kvCacheBytes, kvCacheDtype, loadTimeout, healthTimeout, quarantine, maxGroups);
  }

  /** The KV pool sized in positions ({@code bytes} 0) or in bytes per shard ({@code tokens} 0). */
  public PlacementConfig withKvCache(int newBlockSizeTokens, long tokens, long bytes) {
    return new PlacementConfig(worldSize, shardModelDir, maxNumSequences, newBlockSizeTokens, maxNumTokens, tokens,
        bytes, kvCacheDtype, loadTimeout, healthTimeout, quarantine, maxGroups);
  }

  /** Shards storing their KV pools as {@code dtype}. */
  public PlacementConfig withKvCacheDtype(KvCacheDtype dtype) {
    return new PlacementConfig(worldSize, shardModelDir, maxNumSequences, blockSizeTokens, maxNumTokens, kvCacheTokens,
        kvCacheBytes, dtype, loadTimeout, healthTimeout, quarantine, maxGroups);
  }

  /**
   * KV blocks of a group: {@code kvCacheTokens} positions, or {@code kvCacheBytes} over {@code
   * kvBytesPerToken} (one position's keys and values on one shard), or by default half the memory
   * of the group's smallest shard ({@code shardMemoryBytes}, its JVM's max heap; weights are mapped
   * outside it), at most a full context per sequence of a full batch; at least one block.
   */
  public int numKvBlocks(int maxPositions, long kvBytesPerToken, long shardMemoryBytes) {
    long tokens = kvCacheTokens > 0 ? kvCacheTokens
        : kvCacheBytes > 0 ? kvCacheBytes / kvBytesPerToken
        : Math.min((long) maxNumSequences * maxPositions, shardMemoryBytes / 2 / kvBytesPerToken);
    return Math.toIntExact(Math.max(1, Math.min(Integer.MAX_VALUE, tokens / blockSizeTokens)));
  }

  /**
   * KV blocks of a group whose shards serve from devices, the smallest of whose memory plans
   * allows {@code planBlocks}: {@code kvCacheTokens} or {@code kvCacheBytes} when given, as on the
   * CPU (a shard refuses more than its plan allows), else what the plan allows, at most a full
   * context per sequence of a full batch.
   */
  public int numKvBlocksOnDevices(int maxPositions, long kvBytesPerToken, int planBlocks) {
    if (kvCacheTokens > 0 || kvCacheBytes > 0) {
      return numKvBlocks(maxPositions, kvBytesPerToken, 0);
    }
    long fullBatch = (long) maxNumSequences * maxPositions / blockSizeTokens;
    return (int) Math.max(1, Math.min(planBlocks, fullBatch));
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
