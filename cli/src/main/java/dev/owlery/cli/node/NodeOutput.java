package dev.owlery.cli.node;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.List;

/**
 * A child node's output: each line copied to a shared log prefixed by the node id, and the last
 * {@link #TAIL_LINES} kept to say why the node stopped. The JVM's incubator warning, which every
 * node prints first and no JDK 25 option silences, is dropped.
 */
final class NodeOutput {

  static final int TAIL_LINES = 8;
  /** What every node's JVM prints first (the Vector API is incubating). */
  private static final String INCUBATOR_WARNING = "WARNING: Using incubator modules: jdk.incubator.vector";

  private final String nodeId;
  private final PrintWriter log;
  /** The last lines read; guarded by itself. */
  private final ArrayDeque<String> tail = new ArrayDeque<>();
  private final Thread copier;

  private NodeOutput(String nodeId, PrintWriter log, InputStream output) {
    this.nodeId = nodeId;
    this.log = log;
    this.copier = Thread.ofVirtual().name("owlery-log-" + nodeId).start(() -> copy(output));
  }

  /** Starts copying {@code output} (the child's merged stdout and stderr) until it ends. */
  static NodeOutput follow(String nodeId, PrintWriter log, InputStream output) {
    return new NodeOutput(nodeId, log, output);
  }

  private void copy(InputStream output) {
    try (BufferedReader reader = new BufferedReader(new InputStreamReader(output, StandardCharsets.UTF_8))) {
      for (String line = reader.readLine(); line != null; line = reader.readLine()) {
        if (line.startsWith(INCUBATOR_WARNING)) {
          continue;
        }
        remember(line);
        synchronized (log) {
          log.println("[" + nodeId + "] " + line);
          log.flush();
        }
      }
    } catch (IOException e) {
      // the child is gone; its exit status tells the rest
    }
  }

  private void remember(String line) {
    synchronized (tail) {
      if (tail.size() == TAIL_LINES) {
        tail.removeFirst();
      }
      tail.addLast(line);
    }
  }

  /** The last lines the node wrote, once its output has ended or {@code wait} has passed. */
  List<String> lastLines(Duration wait) {
    try {
      copier.join(wait);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    synchronized (tail) {
      return List.copyOf(tail);
    }
  }
}
