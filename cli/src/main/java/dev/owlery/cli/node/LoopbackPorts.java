package dev.owlery.cli.node;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.util.HashSet;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;

/** The loopback ports a local cluster gives its nodes. */
final class LoopbackPorts {

  private static final String HOST = LocalCluster.HOST;
  /** Nodes' ports come from here: below Linux's default ephemeral range (32768-60999), above the well-known ones. */
  private static final int PORTS_FROM = 20_000;
  private static final int PORTS_UNTIL = 32_768;
  /** Ports this process has handed out, never handed out again (nodes of earlier clusters may still hold them). */
  private static final Set<Integer> PORTS_GIVEN = new HashSet<>();

  private LoopbackPorts() {}

  /**
   * A port free now, below the kernel's ephemeral range and not handed out before by this process: a
   * node binds it a second or two later, when its JVM is up, and a port from the ephemeral range
   * (what binding port 0 gives) can meanwhile be taken by any outgoing connection on the machine,
   * the nodes' own included (seen in CI: a shard worker's Hazelcast port was taken before it bound).
   */
  static int freePort() {
    for (int attempt = 0; attempt < 200; attempt++) {
      int candidate = PORTS_FROM + ThreadLocalRandom.current().nextInt(PORTS_UNTIL - PORTS_FROM);
      synchronized (PORTS_GIVEN) {
        if (PORTS_GIVEN.contains(candidate)) {
          continue;
        }
        try (ServerSocket socket = new ServerSocket(candidate, 1, InetAddress.getByName(HOST))) {
          PORTS_GIVEN.add(candidate);
          return candidate;
        } catch (IOException e) {
          // taken; try another
        }
      }
    }
    throw new UncheckedIOException(new IOException(
        "cannot find a free port on %s between %d and %d".formatted(HOST, PORTS_FROM, PORTS_UNTIL)));
  }

  /**
   * Fails when something listens on {@code port} already: checked before a cluster is started on a
   * port the user chose, so that the answer comes at once, with no child started.
   *
   * @throws LocalClusterException naming the port
   */
  static void requirePortFree(int port) {
    try (ServerSocket socket = new ServerSocket(port, 1, InetAddress.getByName(HOST))) {
      // free: closed again at once
    } catch (IOException e) {
      throw portInUse(port);
    }
  }

  static LocalClusterException portInUse(int port) {
    return new LocalClusterException("port %d is already in use (another coordinator?); choose another with --port"
        .formatted(port));
  }
}
