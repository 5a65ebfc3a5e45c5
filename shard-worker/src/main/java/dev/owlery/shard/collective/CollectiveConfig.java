package dev.owlery.shard.collective;

import dev.owlery.cluster.rpc.GrpcChannelConfig;
import java.time.Duration;

/**
 * How a {@link GrpcCollective} waits and connects.
 *
 * @param allReduceTimeout longest one all-reduce waits for a peer's contribution (or for its
 *     stream to accept ours); past it the group is broken
 * @param connectTimeout longest forming the group waits for every peer stream's handshake; must
 *     cover the slowest peer's load, since a peer only answers once its slice is loaded
 * @param channel keepalive and size limits of the streams this rank opens
 */
public record CollectiveConfig(Duration allReduceTimeout, Duration connectTimeout, GrpcChannelConfig channel) {

  public CollectiveConfig {
    requirePositive("allReduceTimeout", allReduceTimeout);
    requirePositive("connectTimeout", connectTimeout);
    if (channel == null) {
      throw new IllegalArgumentException("channel config must be set");
    }
  }

  /** All-reduce waits of 5 s, 60 s to form the group, the cluster's channel defaults. */
  public static CollectiveConfig defaults() {
    return new CollectiveConfig(Duration.ofSeconds(5), Duration.ofSeconds(60), GrpcChannelConfig.defaults());
  }

  public CollectiveConfig withAllReduceTimeout(Duration timeout) {
    return new CollectiveConfig(timeout, connectTimeout, channel);
  }

  public CollectiveConfig withConnectTimeout(Duration timeout) {
    return new CollectiveConfig(allReduceTimeout, timeout, channel);
  }

  public CollectiveConfig withChannel(GrpcChannelConfig newChannel) {
    return new CollectiveConfig(allReduceTimeout, connectTimeout, newChannel);
  }

  private static void requirePositive(String name, Duration value) {
    if (value == null || value.isNegative() || value.isZero()) {
      throw new IllegalArgumentException(name + " must be a positive duration. Given: " + value);
    }
  }
}
