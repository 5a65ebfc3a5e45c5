package dev.owlery.cli.node;

import java.io.PrintWriter;
import java.util.concurrent.CountDownLatch;
import java.util.logging.Level;
import java.util.logging.Logger;

/** Keeps a started node up until the process is interrupted, then closes it. */
final class NodeRunner {

  /** Held so the level set below is not lost with a collected logger. */
  private static final Logger HAZELCAST_LOGGER = Logger.getLogger("com.hazelcast");

  private NodeRunner() {}

  /** Hazelcast logs every join and partition migration at INFO; a node's own output says what matters. */
  static void quietClusterLogging() {
    if (System.getenv("OWLERY_VERBOSE") == null) {
      HAZELCAST_LOGGER.setLevel(Level.WARNING);
    }
  }

  /** Prints where the node serves, then blocks until SIGINT/SIGTERM, closing {@code node} on the way out. */
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
      } finally {
        stopped.countDown();
      }
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
