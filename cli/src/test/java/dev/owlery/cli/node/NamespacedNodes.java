package dev.owlery.cli.node;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.TimeUnit;

/**
 * Owlery node processes, each inside a namespace of a {@link NetworkNamespaces}: started as {@code
 * ip netns exec NS} followed by the command {@link LocalCluster#owleryCommand} gives, listening on
 * the namespace's address with the same ports everywhere (each namespace has its own), joining
 * the Hazelcast cluster through the coordinator's member and taking member connections from the
 * namespaces' block only. Output goes to the log, each line prefixed by the node id.
 */
final class NamespacedNodes implements AutoCloseable {

  static final int GRPC_PORT = 7000;
  static final int METRICS_PORT = 9100;
  static final int CLUSTER_PORT = 5701;

  /** A node process and the namespace it runs in. */
  record Node(String nodeId, int namespace, Process process) {}

  private final NetworkNamespaces network;
  private final PrintWriter log;
  private final List<String> jvmOptions;
  private final String clusterName = "owlery-netns-" + UUID.randomUUID().toString().substring(0, 8);
  private final List<Node> nodes = new ArrayList<>();
  private int coordinatorNamespace = -1;

  NamespacedNodes(NetworkNamespaces network, PrintWriter log, List<String> jvmOptions) {
    this.network = network;
    this.log = log;
    this.jvmOptions = List.copyOf(jvmOptions);
  }

  /** Starts the coordinator in namespace {@code namespace}, with {@code args} (model, group size...). */
  Node startCoordinator(String nodeId, int namespace, List<String> args) {
    coordinatorNamespace = namespace;
    return start(nodeId, "coordinator", namespace, args);
  }

  /**
   * Starts a shard worker in namespace {@code namespace}. Its partials go over the network only
   * ({@code --peer-shared-memory=off}): a namespace stands for a host of its own, and hosts share
   * no memory.
   */
  Node startShardWorker(String nodeId, int namespace) {
    return start(nodeId, "shard-worker", namespace, List.of("--peer-shared-memory=off"));
  }

  /** The coordinator's public gRPC address, reached from the root namespace over the bridge. */
  String coordinatorAddress() {
    return network.address(coordinatorNamespace) + ":" + GRPC_PORT;
  }

  List<Node> nodes() {
    return List.copyOf(nodes);
  }

  Node node(String nodeId) {
    return nodes.stream().filter(node -> node.nodeId().equals(nodeId)).findFirst().orElseThrow();
  }

  private Node start(String nodeId, String role, int namespace, List<String> args) {
    if (coordinatorNamespace < 0) {
      throw new IllegalStateException("start the coordinator first: the other nodes join through it");
    }
    String host = network.address(namespace);
    List<String> command = new ArrayList<>(network.exec(namespace));
    command.addAll(LocalCluster.nodeCommand(role, jvmOptions));
    command.addAll(List.of("--node-id", nodeId, "--host", host, "--port", String.valueOf(GRPC_PORT),
        "--metrics-port", String.valueOf(METRICS_PORT), "--cluster-port", String.valueOf(CLUSTER_PORT),
        "--members", network.address(coordinatorNamespace) + ":" + CLUSTER_PORT, "--cluster-name", clusterName,
        "--cluster-allow", network.cidr(), "--parent-pid", String.valueOf(ProcessHandle.current().pid())));
    command.addAll(args);
    try {
      Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
      NodeOutput.follow(nodeId, log, process.getInputStream());
      Node node = new Node(nodeId, namespace, process);
      nodes.add(node);
      return node;
    } catch (IOException e) {
      throw new UncheckedIOException("cannot start " + nodeId + ": " + e.getMessage(), e);
    }
  }

  /** Stops every node: SIGTERM, then SIGKILL after 10 s. */
  @Override
  public void close() {
    for (Node node : nodes.reversed()) {
      node.process().destroy();
    }
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    for (Node node : nodes) {
      try {
        if (!node.process().waitFor(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS)) {
          node.process().destroyForcibly().waitFor(5, TimeUnit.SECONDS);
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        node.process().destroyForcibly();
      }
    }
  }
}
