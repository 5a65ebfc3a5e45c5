package dev.owlery.cli.node;

import dev.owlery.cli.node.LocalCluster.NodeProcess;
import dev.owlery.cluster.tls.DevCertificates;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * The child processes of a local cluster, one JVM per node started as {@code owlery <role>} with
 * this JVM's Java and classpath, on loopback in one Hazelcast cluster: their output followed into
 * the shared log, those killed on purpose remembered (never restarted), all stopped together.
 */
final class NodeProcesses {

  private static final Duration STOP_GRACE = Duration.ofSeconds(10);
  /** How long the certificates a TLS cluster gives its nodes are valid. */
  private static final Duration CERTIFICATE_VALIDITY = Duration.ofDays(30);
  /** How long a failure report waits for the rest of an exited node's output. */
  private static final Duration OUTPUT_DRAIN = Duration.ofSeconds(2);

  private final String clusterName;
  private final PrintWriter log;
  private final List<String> jvmOptions;
  /** Where the development CA and the nodes' certificates lie; null: every link is plaintext. */
  private final Path certs;
  private final CountDownLatch stopped = new CountDownLatch(1);
  private final Object lock = new Object();
  /** Every child started and not replaced, in start order; guarded by lock. */
  private final List<NodeProcess> nodes = new ArrayList<>();
  /** By node id; guarded by lock. */
  private final Map<String, NodeOutput> outputs = new HashMap<>();
  /** Node ids stopped on purpose by {@link #kill}, never restarted; guarded by lock. */
  private final Set<String> killed = new HashSet<>();
  /** When each child was started ({@link System#nanoTime()}), by node id; guarded by lock. */
  private final Map<String, Long> startedAt = new HashMap<>();
  /** Set by the first {@link #close()}; no child starts after it. Guarded by lock. */
  private boolean closing;

  NodeProcesses(String clusterName, PrintWriter log, List<String> jvmOptions, Path certs) {
    this.clusterName = clusterName;
    this.log = log;
    this.jvmOptions = List.copyOf(jvmOptions);
    this.certs = certs;
  }

  /**
   * Starts {@code owlery <role>} as {@code nodeId} on these ports, joining the Hazelcast cluster
   * through {@code members}, with {@code roleArgs} added (and the node's TLS options on a TLS
   * cluster).
   *
   * @throws LocalClusterException when the cluster is closing
   */
  NodeProcess launch(String nodeId, String role, int grpcPort, int metricsPort, int clusterPort, List<String> members,
      List<String> roleArgs) {
    List<String> command = LocalCluster.nodeCommand(role, jvmOptions);
    command.addAll(List.of("--node-id", nodeId, "--host", LocalCluster.HOST, "--port", String.valueOf(grpcPort),
        "--metrics-port", String.valueOf(metricsPort), "--cluster-port", String.valueOf(clusterPort),
        "--members", String.join(",", members), "--cluster-name", clusterName,
        "--parent-pid", String.valueOf(ProcessHandle.current().pid())));
    command.addAll(roleArgs);
    command.addAll(tlsArgs(nodeId, role));
    // Started under the lock, so that close() either sees the child or it is never started.
    synchronized (lock) {
      requireNotClosed();
      Process process;
      try {
        process = new ProcessBuilder(command).redirectErrorStream(true).start();
      } catch (IOException e) {
        throw new UncheckedIOException("cannot start " + nodeId + ": " + e.getMessage(), e);
      }
      NodeProcess node = new NodeProcess(nodeId, role, process, grpcPort, metricsPort, clusterPort);
      nodes.add(node);
      startedAt.put(nodeId, System.nanoTime());
      outputs.put(nodeId, NodeOutput.follow(nodeId, log, process.getInputStream()));
      return node;
    }
  }

  /**
   * A node's TLS options, its certificate written first: the cluster CA and the node's certificate
   * for the links between nodes, and for the coordinator the same certificate on its public API.
   */
  private List<String> tlsArgs(String nodeId, String role) {
    if (certs == null) {
      return List.of();
    }
    DevCertificates.write(certs, List.of(nodeId), List.of(), CERTIFICATE_VALIDITY);
    String certificate = DevCertificates.certificate(certs, nodeId).toString();
    String key = DevCertificates.key(certs, nodeId).toString();
    List<String> args = new ArrayList<>(List.of("--cluster-ca", tlsCa().toString(), "--node-cert", certificate,
        "--node-key", key));
    if (role.equals("coordinator")) {
      args.addAll(List.of("--tls-cert", certificate, "--tls-key", key));
    }
    return args;
  }

  /** The CA certificate clients of a TLS cluster trust; null when the cluster runs in plaintext. */
  Path tlsCa() {
    return certs == null ? null : DevCertificates.caCertificate(certs);
  }

  /** Every child started and not replaced by a restart, in start order. */
  List<NodeProcess> all() {
    synchronized (lock) {
      return List.copyOf(nodes);
    }
  }

  /** Forgets {@code dead}, which a restarted node replaces. */
  void replaced(NodeProcess dead) {
    synchronized (lock) {
      nodes.remove(dead);
    }
  }

  /** Kills a node's process at once, as a crash would (no graceful leave); it is never restarted. */
  void kill(NodeProcess node) {
    synchronized (lock) {
      killed.add(node.nodeId());
    }
    node.process().destroyForcibly();
    try {
      node.process().waitFor(STOP_GRACE.toMillis(), TimeUnit.MILLISECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  boolean wasKilled(NodeProcess node) {
    synchronized (lock) {
      return killed.contains(node.nodeId());
    }
  }

  /** How long {@code node}'s process ran (or has run) since it was started. */
  Duration lived(NodeProcess node) {
    synchronized (lock) {
      return Duration.ofNanos(System.nanoTime() - startedAt.get(node.nodeId()));
    }
  }

  /** The last line {@code node} wrote so far, or null. */
  String lastLine(NodeProcess node) {
    List<String> lines = outputOf(node).lastLines(Duration.ZERO);
    return lines.isEmpty() ? null : lines.getLast();
  }

  private NodeOutput outputOf(NodeProcess node) {
    synchronized (lock) {
      return outputs.get(node.nodeId());
    }
  }

  /** "shard-0 (shard-worker) exited with status 2 while starting; its last lines:" and those lines. */
  LocalClusterException exitedEarly(NodeProcess node, String when) {
    List<String> lines = outputOf(node).lastLines(OUTPUT_DRAIN);
    String said = lines.isEmpty() ? "it printed nothing" : "its last lines:%n  %s".formatted(String.join(System.lineSeparator() + "  ", lines));
    return new LocalClusterException("%s (%s) exited with status %d %s; %s"
        .formatted(node.nodeId(), node.role(), node.process().exitValue(), when, said));
  }

  boolean closing() {
    synchronized (lock) {
      return closing;
    }
  }

  void requireNotClosed() {
    if (closing()) {
      throw new LocalClusterException("the local cluster was stopped while starting");
    }
  }

  /**
   * Stops every child: a polite SIGTERM first (nodes leave the cluster cleanly), then a kill.
   * Called again (or from the shutdown hook while another call runs), waits for the first call.
   */
  void close() {
    List<NodeProcess> running;
    synchronized (lock) {
      running = closing ? null : List.copyOf(nodes).reversed();
      closing = true;
    }
    if (running == null) {
      awaitStopped(STOP_GRACE.plusSeconds(5));
      return;
    }
    for (NodeProcess node : running) {
      node.process().destroy();
    }
    long deadline = System.nanoTime() + STOP_GRACE.toNanos();
    for (NodeProcess node : running) {
      try {
        long left = Math.max(0, deadline - System.nanoTime());
        if (!node.process().waitFor(left, TimeUnit.NANOSECONDS)) {
          node.process().destroyForcibly();
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        node.process().destroyForcibly();
      }
    }
    stopped.countDown();
  }

  /** Blocks until {@link #close()} has stopped every child. */
  void awaitClosed() throws InterruptedException {
    stopped.await();
  }

  private void awaitStopped(Duration timeout) {
    try {
      stopped.await(timeout.toNanos(), TimeUnit.NANOSECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
