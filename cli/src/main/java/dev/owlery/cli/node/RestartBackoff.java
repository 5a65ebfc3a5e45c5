package dev.owlery.cli.node;

import java.time.Duration;
import java.util.HashMap;
import java.util.Map;

/**
 * How long the {@code owlery local} supervisor waits before restarting a node that died: {@link
 * #FIRST}, doubled for each restart of the same node that lived less than {@link #STABLE}, at
 * most {@link #MAX}. A node that crashes at start-up (a bad flag, a port taken) is so retried ever
 * more slowly instead of in a tight loop. Not thread-safe; the supervisor's thread owns it.
 */
final class RestartBackoff {

  static final Duration FIRST = Duration.ofMillis(500);
  static final Duration MAX = Duration.ofSeconds(30);
  /** A node that ran this long before dying starts over at {@link #FIRST}. */
  static final Duration STABLE = Duration.ofSeconds(60);

  /** Restarts in a row per node id, each after a short life. */
  private final Map<String, Integer> numQuickRestarts = new HashMap<>();

  /** The wait before restarting {@code nodeId}, which died after running for {@code lived}. */
  Duration next(String nodeId, Duration lived) {
    int quick = lived.compareTo(STABLE) >= 0 ? 0 : numQuickRestarts.getOrDefault(nodeId, 0);
    numQuickRestarts.put(nodeId, quick + 1);
    Duration wait = FIRST.multipliedBy(1L << Math.min(quick, 16));
    return wait.compareTo(MAX) > 0 ? MAX : wait;
  }

  /** Restarts of {@code nodeId} so far in its current run of quick deaths. */
  int numQuickRestarts(String nodeId) {
    return numQuickRestarts.getOrDefault(nodeId, 0);
  }
}
