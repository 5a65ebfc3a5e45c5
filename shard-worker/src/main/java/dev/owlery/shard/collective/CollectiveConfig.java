package dev.owlery.shard.collective;

import dev.owlery.cluster.rpc.GrpcChannelConfig;
import java.nio.file.Path;
import java.time.Duration;

/**
 * How a {@link GrpcCollective} waits and connects.
 *
 * @param allReduceTimeout longest one all-reduce waits for a peer's contribution (or for its
 *     stream to accept ours); past it the group is broken
 * @param connectTimeout longest forming the group waits for every peer stream's handshake; must
 *     cover the slowest peer's load, since a peer only answers once its slice is loaded
 * @param channel keepalive and size limits of the streams this rank opens
 * @param sharedMemoryDir where this rank offers its peers a file of host shared memory to read its
 *     partials from ({@link SharedSlots}; e.g. /dev/shm); null: gRPC messages only
 */
public record CollectiveConfig(Duration allReduceTimeout, Duration connectTimeout, GrpcChannelConfig channel,
    Path sharedMemoryDir) {

  public CollectiveConfig {
    requirePositive("allReduceTimeout", allReduceTimeout);
    requirePositive("connectTimeout", connectTimeout);
    if (channel == null) {
      throw new IllegalArgumentException("channel config must be set");
    }
  }

  /** All-reduce waits of 5 s, 60 s to form the group, the cluster's channel defaults, gRPC messages only. */
  public static CollectiveConfig defaults() {
    return new CollectiveConfig(Duration.ofSeconds(5), Duration.ofSeconds(60), GrpcChannelConfig.defaults(), null);
  }

  public CollectiveConfig withAllReduceTimeout(Duration timeout) {
    return new CollectiveConfig(timeout, connectTimeout, channel, sharedMemoryDir);
  }

  public CollectiveConfig withConnectTimeout(Duration timeout) {
    return new CollectiveConfig(allReduceTimeout, timeout, channel, sharedMemoryDir);
  }

  public CollectiveConfig withChannel(GrpcChannelConfig newChannel) {
    return new CollectiveConfig(allReduceTimeout, connectTimeout, newChannel, sharedMemoryDir);
  }

  /** Offers peers on this host the partials in a file under {@code dir}; null: gRPC messages only. */
  public CollectiveConfig withSharedMemory(Path dir) {
    return new CollectiveConfig(allReduceTimeout, connectTimeout, channel, dir);
  }

  private static void requirePositive(String name, Duration value) {
    if (value == null || value.isNegative() || value.isZero()) {
      throw new IllegalArgumentException(name + " must be a positive duration. Given: " + value);
    }
  }
}
