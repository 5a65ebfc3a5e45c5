package dev.owlery.cli.node;

import java.io.PrintWriter;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.logging.Level;
import java.util.logging.Logger;

/** Keeps a started node up until the process is interrupted or its parent exits, then closes it. */
final class NodeRunner {

  /** Held so the level set below is not lost with a collected logger. */
  private static final Logger HAZELCAST_LOGGER = Logger.getLogger("com.hazelcast");
  /**
   * How often a node checks that its parent is alive: an orphan lingers at most this long, and an
   * idle node wakes no more often for it. {@code ProcessHandle.onExit()} of a process that is not
   * our child polls too, but backs off to every 5 s.
   */
  private static final Duration PARENT_POLL = Duration.ofSeconds(1);
  /** How long a node whose parent is gone may take to close before its JVM is halted. */
  private static final Duration ORPHAN_STOP_LIMIT = Duration.ofSeconds(5);
  private static final int ORPHANED_EXIT_STATUS = 1;

  /** What the JVM exits with once the node is closed: 0 after a drain on SIGTERM, ORPHANED after the parent died. */
  private static volatile int exitStatus;

  private NodeRunner() {}

  /** Hazelcast logs every join and partition migration at INFO; a node's own output says what matters. */
  static void quietClusterLogging() {
    if (System.getenv("OWLERY_VERBOSE") == null) {
      HAZELCAST_LOGGER.setLevel(Level.WARNING);
    }
  }

  /**
   * With {@code --parent-pid}, exits this JVM once that process is gone (killed, crashed or
   * stopped without stopping its children): the shutdown hook closes the node, and the JVM halts
   * if that takes longer than {@link #ORPHAN_STOP_LIMIT}. Called before the node starts, so a
   * parent lost during start-up stops it too.
   *
   * @throws IllegalArgumentException when no process has that pid
   */
  static void exitWithParent(NodeOptions node, PrintWriter err) {
    Long pid = node.parentPid();
    if (pid == null) {
      return;
    }
    ProcessHandle parent = ProcessHandle.of(pid).filter(ProcessHandle::isAlive)
        .orElseThrow(() -> new IllegalArgumentException("--parent-pid %d: no such process".formatted(pid)));
    // An exited parent nobody has reaped yet still looks alive; its children are handed to another
    // parent at once, though, so a node started by that parent watches its own parent pid too.
    boolean startedByParent = parentPid() == pid;
    Thread.ofPlatform().daemon().name("owlery-parent-watch").start(() -> {
      try {
        while (parent.isAlive() && (!startedByParent || parentPid() == pid)) {
          Thread.sleep(PARENT_POLL);
        }
        err.printf("owlery: %s: parent process %d exited; stopping%n", node.nodeId(), pid);
        err.flush();
        exitStatus = ORPHANED_EXIT_STATUS;
        Thread.ofPlatform().daemon().name("owlery-orphan-halt").start(() -> {
          try {
            Thread.sleep(ORPHAN_STOP_LIMIT);
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
          }
          Runtime.getRuntime().halt(ORPHANED_EXIT_STATUS);
        });
        System.exit(ORPHANED_EXIT_STATUS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    });
  }

  private static long parentPid() {
    return ProcessHandle.current().parent().map(ProcessHandle::pid).orElse(-1L);
  }

  /**
   * Prints where the node serves, then blocks until SIGINT/SIGTERM, closing (draining) {@code node}
   * on the way out; the JVM then exits 0 (not 143, SIGTERM's), so that a supervisor tells a clean
   * drain from a crash, or 1 when the node failed to close or its parent process died.
   */
  static int serveUntilInterrupted(AutoCloseable node, String banner, PrintWriter err) {
    err.println(banner);
    err.flush();
    CountDownLatch stopped = new CountDownLatch(1);
    Thread hook = new Thread(() -> {
      try {
        node.close();
      } catch (Exception e) {
        err.println("owlery: error while stopping: " + e);
        err.flush();
        exitStatus = 1;
      } finally {
        stopped.countDown();
      }
      Runtime.getRuntime().halt(exitStatus);
    }, "owlery-shutdown");
    Runtime.getRuntime().addShutdownHook(hook);
    try {
      stopped.await();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    return 0;
  }
}
