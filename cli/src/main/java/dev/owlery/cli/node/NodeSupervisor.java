package dev.owlery.cli.node;

import dev.owlery.cli.node.LocalCluster.NodeProcess;
import java.io.PrintWriter;
import java.time.Duration;
import java.util.HashSet;
import java.util.Set;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * {@code owlery local}'s supervisor: restarts every child of a local cluster that dies (but those
 * {@link NodeProcesses#kill}ed on purpose, as loadtest's {@code --chaos} does), after a {@link
 * RestartBackoff}, writing to the log which node died, its exit status, the signal that killed it
 * and its last line. Everything runs on one thread of its own, which owns the backoff.
 */
final class NodeSupervisor {

  /** How often the children are checked. */
  private static final Duration POLL = Duration.ofMillis(200);

  private final NodeProcesses processes;
  private final PrintWriter log;
  /** Starts a dead child again; throws when it cannot. */
  private final Consumer<NodeProcess> restart;
  private final ScheduledExecutorService thread = Executors.newSingleThreadScheduledExecutor(
      Thread.ofPlatform().name("owlery-local-supervisor").daemon().factory());
  // Confined to the supervisor's thread.
  private final RestartBackoff backoff = new RestartBackoff();
  /** Dead children whose restart is scheduled. */
  private final Set<NodeProcess> restarting = new HashSet<>();

  private NodeSupervisor(NodeProcesses processes, PrintWriter log, Consumer<NodeProcess> restart) {
    this.processes = processes;
    this.log = log;
    this.restart = restart;
  }

  /** Starts supervising {@code processes}: a child found dead is passed to {@code restart} after its backoff. */
  static NodeSupervisor start(NodeProcesses processes, PrintWriter log, Consumer<NodeProcess> restart) {
    NodeSupervisor supervisor = new NodeSupervisor(processes, log, restart);
    supervisor.thread.scheduleWithFixedDelay(supervisor::restartDeadNodes, 0, POLL.toMillis(), TimeUnit.MILLISECONDS);
    return supervisor;
  }

  /** Stops checking; a restart under way finds the cluster closing and starts no child. */
  void stop() {
    thread.shutdownNow();
  }

  /**
   * Schedules a restart of each child found dead, saying so: "owlery local: shard-1 (shard-worker)
   * died with exit status 137 (killed by signal 9) after 12 s; its last line: ...; restarting it in
   * 500 ms (restart 1)".
   */
  private void restartDeadNodes() {
    for (NodeProcess node : processes.all()) {
      if (processes.closing()) {
        return;
      }
      if (node.process().isAlive() || processes.wasKilled(node) || !restarting.add(node)) {
        continue;
      }
      Duration lived = processes.lived(node);
      Duration wait = backoff.next(node.nodeId(), lived);
      int status = node.process().exitValue();
      String why = status > 128 ? " (killed by signal %d)".formatted(status - 128) : "";
      String lastLine = processes.lastLine(node);
      String said = lastLine == null ? "" : "; its last line: " + lastLine;
      log.printf("owlery local: %s (%s) died with exit status %d%s after %d s%s; restarting it in %d ms (restart %d)%n",
          node.nodeId(), node.role(), status, why, lived.toSeconds(), said, wait.toMillis(),
          backoff.numQuickRestarts(node.nodeId()));
      log.flush();
      thread.schedule(() -> restart(node), wait.toMillis(), TimeUnit.MILLISECONDS);
    }
  }

  private void restart(NodeProcess dead) {
    try {
      restart.accept(dead);
    } catch (RuntimeException e) {
      if (processes.closing()) {
        return; // stopped meanwhile: nothing to restart
      }
      log.printf("owlery local: restarting %s failed: %s%n", dead.nodeId(), e.getMessage());
      log.flush();
    } finally {
      restarting.remove(dead); // on failure, the next round finds it dead again and waits longer
    }
  }
}
