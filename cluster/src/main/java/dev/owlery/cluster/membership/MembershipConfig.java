package dev.owlery.cluster.membership;

import java.net.InetAddress;
import java.time.Duration;
import java.util.List;

/**
 * How a node joins the Hazelcast cluster.
 *
 * @param clusterName members with another name are refused; one per deployment (and per test)
 * @param bindHost the interface the member listens on (that one only) and advertises, e.g. "127.0.0.1"
 * @param port the member's TCP port, 1..65535 (no auto-increment: the address is what others list)
 * @param members "host:port" of the members to join through (this one may be listed too); empty
 *     only for a cluster of one
 * @param heartbeatInterval how often members heartbeat each other
 * @param maxNoHeartbeat silence after which a member is declared dead and removed
 * @param gracefulShutdownTimeout longest a leaving member waits to hand its partitions over
 * @param allowedSources the addresses other members may connect from; a connection from anywhere
 *     else is closed before it carries anything; empty allows any (docs/security.md)
 */
public record MembershipConfig(
    String clusterName,
    String bindHost,
    int port,
    List<String> members,
    Duration heartbeatInterval,
    Duration maxNoHeartbeat,
    Duration gracefulShutdownTimeout,
    List<AddressBlock> allowedSources) {

  /** Default port of a member, as Hazelcast's. */
  public static final int DEFAULT_PORT = 5701;

  public MembershipConfig {
    if (clusterName == null || clusterName.isBlank()) {
      throw new IllegalArgumentException("clusterName must not be blank. Given: '" + clusterName + "'");
    }
    if (bindHost == null || bindHost.isBlank()) {
      throw new IllegalArgumentException("bindHost must not be blank. Given: '" + bindHost + "'");
    }
    if (port < 1 || port > 65535) {
      throw new IllegalArgumentException("port must be in 1..65535. Given: " + port);
    }
    members = List.copyOf(members);
    allowedSources = List.copyOf(allowedSources);
    for (String member : members) {
      if (member.isBlank()) {
        throw new IllegalArgumentException("members must not hold blank addresses. Given: " + members);
      }
    }
    requireWholeSeconds("heartbeatInterval", heartbeatInterval);
    requireWholeSeconds("maxNoHeartbeat", maxNoHeartbeat);
    requireWholeSeconds("gracefulShutdownTimeout", gracefulShutdownTimeout);
    if (maxNoHeartbeat.compareTo(heartbeatInterval.multipliedBy(2)) < 0) {
      throw new IllegalArgumentException(
          "maxNoHeartbeat must be at least twice heartbeatInterval ("
              + heartbeatInterval.multipliedBy(2).toSeconds()
              + " s). Given: "
              + maxNoHeartbeat.toSeconds()
              + " s");
    }
  }

  /**
   * A member on {@code bindHost:port} joining through {@code members}, with failure detection
   * that removes a silent member after 5 s (heartbeat every second), taking connections from any
   * address.
   */
  public static MembershipConfig of(String clusterName, String bindHost, int port, List<String> members) {
    return new MembershipConfig(clusterName, bindHost, port, members, Duration.ofSeconds(1), Duration.ofSeconds(5),
        Duration.ofSeconds(10), List.of());
  }

  /** This member, taking connections from other members only from {@code sources} (empty: any). */
  public MembershipConfig withAllowedSources(List<AddressBlock> sources) {
    return new MembershipConfig(clusterName, bindHost, port, members, heartbeatInterval, maxNoHeartbeat,
        gracefulShutdownTimeout, sources);
  }

  /** Whether a member may connect from {@code address}. */
  public boolean allows(InetAddress address) {
    return allowedSources.isEmpty() || allowedSources.stream().anyMatch(block -> block.contains(address));
  }

  /** This member's own "host:port". */
  public String address() {
    return bindHost + ":" + port;
  }

  // Hazelcast takes these settings in whole seconds; a fraction would be silently truncated.
  private static void requireWholeSeconds(String name, Duration value) {
    if (value == null || value.isNegative() || value.isZero() || value.toNanosPart() != 0) {
      throw new IllegalArgumentException(name + " must be a positive whole number of seconds. Given: " + value);
    }
  }
}
