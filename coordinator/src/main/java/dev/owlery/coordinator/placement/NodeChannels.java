package dev.owlery.coordinator.placement;

import io.grpc.ManagedChannel;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

/**
 * The coordinator's channels to other nodes, one per "host:port", opened on first use and kept
 * until the node leaves. Thread-safe.
 */
public final class NodeChannels implements AutoCloseable {

  private final Function<String, ManagedChannel> opener;
  private final Map<String, ManagedChannel> channels = new ConcurrentHashMap<>();

  /**
   * @param opener opens a channel to an address (production: {@code GrpcChannels.forTarget};
   *     tests may map addresses to in-process channels)
   */
  public NodeChannels(Function<String, ManagedChannel> opener) {
    this.opener = opener;
  }

  public ManagedChannel channel(String address) {
    return channels.computeIfAbsent(address, opener);
  }

  /** Shuts the channel to {@code address} down, if one is open; calls in flight fail. */
  public void close(String address) {
    ManagedChannel channel = channels.remove(address);
    if (channel != null) {
      channel.shutdownNow();
    }
  }

  /** Shuts every channel down, waiting up to 5 s in all. */
  @Override
  public void close() {
    for (ManagedChannel channel : channels.values()) {
      channel.shutdownNow();
    }
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
    for (ManagedChannel channel : channels.values()) {
      try {
        channel.awaitTermination(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return;
      }
    }
    channels.clear();
  }
}
