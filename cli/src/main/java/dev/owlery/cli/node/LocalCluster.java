package dev.owlery.cli.node;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.owlery.client.OwleryClient;
import dev.owlery.client.OwleryException;
import dev.owlery.proto.v1.GetClusterStatusResponse;
import dev.owlery.proto.v1.NodeRole;
import dev.owlery.proto.v1.NodeState;
import dev.owlery.proto.v1.NodeStatus;
import dev.owlery.proto.v1.ShardGroupStatus;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.UUID;
import java.util.concurrent.TimeUnit;

/**
 * A whole Owlery cluster on this machine as separate processes (one JVM per node, each started as
 * {@code owlery <role>} with the same Java and classpath): a coordinator, {@code numVisionWorkers}
 * vision workers and {@code numShards} shard workers forming one tensor-parallel group, all on
 * loopback with their own Hazelcast member joined through the coordinator's.
 */
public final class LocalCluster implements AutoCloseable {

  /** One child process and the ports it was given. */
  public record NodeProcess(String nodeId, String role, Process process, int grpcPort, int metricsPort, int clusterPort) {}

  /**
   * The JDK-internal packages Hazelcast asks for (else every member logs a multi-line warning and
   * runs slower); the {@code owlery} launcher passes the same.
   */
  private static final List<String> HAZELCAST_ACCESS = List.of(
      "--add-exports", "java.base/jdk.internal.ref=ALL-UNNAMED", "--add-opens", "java.base/java.lang=ALL-UNNAMED",
      "--add-opens", "java.base/sun.nio.ch=ALL-UNNAMED", "--add-opens", "java.management/sun.management=ALL-UNNAMED",
      "--add-opens", "jdk.management/com.sun.management.internal=ALL-UNNAMED");
  /** What every JVM with the Vector API prints first; no JDK 25 option silences it, so it is not copied. */
  private static final String INCUBATOR_WARNING = "WARNING: Using incubator modules: jdk.incubator.vector";
  private static final String HOST = "127.0.0.1";
  private static final Duration STOP_GRACE = Duration.ofSeconds(10);

  private final Path model;
  private final int numShards;
  private final String clusterName;
  private final PrintWriter log;
  private final List<String> jvmOptions;
  private final List<NodeProcess> nodes = new ArrayList<>();
  private int coordinatorClusterPort;
  private int coordinatorPort;
  private int nextShardIndex;

  private LocalCluster(Path model, int numShards, PrintWriter log, List<String> jvmOptions) {
    this.model = model.toAbsolutePath();
    this.numShards = numShards;
    this.clusterName = "owlery-local-" + UUID.randomUUID().toString().substring(0, 8);
    this.log = log;
    this.jvmOptions = List.copyOf(jvmOptions);
  }

  /**
   * Starts every node; returns once the processes are launched (see {@link #awaitReady}).
   *
   * @param port the coordinator's public gRPC port, 0 for a free one
   * @param log where the children's output goes, each line prefixed by its node id
   * @param jvmOptions extra options for every child JVM (e.g. -Xmx)
   */
  public static LocalCluster start(Path model, int numShards, int numVisionWorkers, int port, PrintWriter log,
      List<String> jvmOptions) {
    return start(model, numShards, numVisionWorkers, port, log, jvmOptions, List.of());
  }

  /**
   * As {@link #start(Path, int, int, int, PrintWriter, List)}, with {@code coordinatorArgs} added to
   * the coordinator's command line (e.g. {@code --max-num-seqs=32}, {@code --kv-cache-tokens=8192}).
   */
  public static LocalCluster start(Path model, int numShards, int numVisionWorkers, int port, PrintWriter log,
      List<String> jvmOptions, List<String> coordinatorArgs) {
    if (numShards < 1) {
      throw new IllegalArgumentException("--shards must be >= 1, got " + numShards);
    }
    if (numVisionWorkers < 0) {
      throw new IllegalArgumentException("--vision-workers must be >= 0, got " + numVisionWorkers);
    }
    LocalCluster cluster = new LocalCluster(model, numShards, log, jvmOptions);
    try {
      cluster.coordinatorPort = port == 0 ? freePort() : port;
      cluster.coordinatorClusterPort = freePort();
      List<String> coordinatorCommand = new ArrayList<>(
          List.of("--model", cluster.model.toString(), "--group-size", String.valueOf(numShards)));
      coordinatorCommand.addAll(coordinatorArgs);
      cluster.launch("coordinator", "coordinator", cluster.coordinatorPort, cluster.coordinatorClusterPort,
          coordinatorCommand);
      // Workers join through the coordinator's Hazelcast member: start them once it is up, or
      // they form clusters of their own first and Hazelcast has to merge them (slow and noisy).
      cluster.awaitCoordinator(Duration.ofSeconds(120));
      for (int v = 0; v < numVisionWorkers; v++) {
        cluster.launch("vision-" + v, "vision-worker", freePort(), freePort(), List.of("--model", cluster.model.toString()));
      }
      for (int s = 0; s < numShards; s++) {
        cluster.startShardWorker();
      }
      return cluster;
    } catch (RuntimeException e) {
      cluster.close();
      throw e;
    }
  }

  /** Waits until the coordinator answers on its public port; fails naming it if it exited. */
  private void awaitCoordinator(Duration timeout) {
    NodeProcess coordinator = nodes.getFirst();
    long deadline = System.nanoTime() + timeout.toNanos();
    try (OwleryClient client = OwleryClient.builder().target(coordinatorAddress()).defaultDeadline(Duration.ofSeconds(2)).build()) {
      while (true) {
        if (!coordinator.process().isAlive()) {
          throw new IllegalStateException("the coordinator exited with status %d while starting; see its output"
              .formatted(coordinator.process().exitValue()));
        }
        try {
          client.getClusterStatus();
          return;
        } catch (OwleryException e) {
          if (System.nanoTime() > deadline) {
            throw new IllegalStateException("the coordinator did not answer on %s within %d s: %s"
                .formatted(coordinatorAddress(), timeout.toSeconds(), e.getMessage()), e);
          }
        }
        pause();
      }
    }
  }

  private static void pause() {
    try {
      Thread.sleep(200);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while waiting for the local cluster", e);
    }
  }

  /** Starts one more shard worker process (a replacement after a failure, or a spare). */
  public NodeProcess startShardWorker() {
    return launch("shard-" + nextShardIndex++, "shard-worker", freePort(), freePort(), List.of());
  }

  /** The coordinator's public address, HOST:PORT. */
  public String coordinatorAddress() {
    return HOST + ":" + coordinatorPort;
  }

  public List<NodeProcess> nodes() {
    return List.copyOf(nodes);
  }

  /** Kills a node's process at once, as a crash would (no graceful leave). */
  public void kill(NodeProcess node) {
    node.process().destroyForcibly();
    try {
      node.process().waitFor(STOP_GRACE.toMillis(), TimeUnit.MILLISECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  /**
   * Waits until the coordinator reports a READY shard group of {@code numShards} ranks and
   * {@code numVisionWorkers} READY vision workers; fails naming a child that exited meanwhile.
   */
  public GetClusterStatusResponse awaitReady(int numVisionWorkers, Duration timeout) {
    long deadline = System.nanoTime() + timeout.toNanos();
    String lastState = "no answer from the coordinator yet";
    try (OwleryClient client = OwleryClient.builder().target(coordinatorAddress()).defaultDeadline(Duration.ofSeconds(2)).build()) {
      while (System.nanoTime() < deadline) {
        for (NodeProcess node : nodes) {
          if (!node.process().isAlive() && !node.role().equals("shard-worker")) {
            throw new IllegalStateException("%s (%s) exited with status %d before the cluster was ready; see its output above"
                .formatted(node.nodeId(), node.role(), node.process().exitValue()));
          }
        }
        try {
          GetClusterStatusResponse status = client.getClusterStatus();
          long readyGroups = status.getGroupsList().stream()
              .filter(g -> g.getState() == NodeState.NODE_STATE_READY && g.getWorldSize() == numShards).count();
          long readyVision = status.getNodesList().stream()
              .filter(n -> n.getRole() == NodeRole.NODE_ROLE_VISION_WORKER && n.getState() == NodeState.NODE_STATE_READY)
              .count();
          if (readyGroups >= 1 && readyVision >= numVisionWorkers) {
            return status;
          }
          lastState = "%d ready shard group(s) of %d, %d of %d vision worker(s) ready"
              .formatted(readyGroups, numShards, readyVision, numVisionWorkers);
        } catch (OwleryException e) {
          lastState = "coordinator: " + e.getMessage();
        }
        pause();
      }
    }
    throw new IllegalStateException("the local cluster was not ready within %d s (%s)".formatted(timeout.toSeconds(), lastState));
  }

  /** Writes {@code {"coordinator": "HOST:PORT", "nodes": [{"role", "address", "metrics"}]}} atomically. */
  public void writeReadyFile(Path file, GetClusterStatusResponse status) {
    ObjectMapper json = new ObjectMapper();
    ObjectNode root = json.createObjectNode();
    root.put("coordinator", coordinatorAddress());
    ArrayNode list = root.putArray("nodes");
    for (NodeStatus n : status.getNodesList()) {
      list.addObject()
          .put("role", roleName(n.getRole()))
          .put("node_id", n.getNodeId())
          .put("address", n.getGrpcAddress())
          .put("metrics", n.getMetricsUrl());
    }
    try {
      Path parent = file.toAbsolutePath().getParent();
      Files.createDirectories(parent);
      Path tmp = Files.createTempFile(parent, ".ready", ".json");
      Files.writeString(tmp, root.toPrettyString() + "\n");
      Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write the ready file " + file + ": " + e.getMessage(), e);
    }
  }

  private static String roleName(NodeRole role) {
    return switch (role) {
      case NODE_ROLE_COORDINATOR -> "coordinator";
      case NODE_ROLE_VISION_WORKER -> "vision-worker";
      case NODE_ROLE_SHARD_WORKER -> "shard-worker";
      case NODE_ROLE_UNSPECIFIED, UNRECOGNIZED -> role.name().toLowerCase(Locale.ROOT);
    };
  }

  private NodeProcess launch(String nodeId, String role, int grpcPort, int clusterPort, List<String> roleArgs) {
    int metricsPort = freePort();
    List<String> command = new ArrayList<>();
    command.add(ProcessHandle.current().info().command().orElse(Path.of(System.getProperty("java.home"), "bin", "java").toString()));
    command.addAll(List.of("--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
        "--sun-misc-unsafe-memory-access=allow", "-XX:+UseParallelGC"));
    command.addAll(HAZELCAST_ACCESS);
    command.addAll(jvmOptions);
    command.addAll(List.of("-cp", System.getProperty("java.class.path"), "dev.owlery.cli.Owlery", role,
        "--node-id", nodeId, "--host", HOST, "--port", String.valueOf(grpcPort),
        "--metrics-port", String.valueOf(metricsPort), "--cluster-port", String.valueOf(clusterPort),
        "--members", HOST + ":" + coordinatorClusterPort, "--cluster-name", clusterName));
    command.addAll(roleArgs);
    Process process;
    try {
      process = new ProcessBuilder(command).redirectErrorStream(true).start();
    } catch (IOException e) {
      throw new UncheckedIOException("cannot start " + nodeId + ": " + e.getMessage(), e);
    }
    NodeProcess node = new NodeProcess(nodeId, role, process, grpcPort, metricsPort, clusterPort);
    nodes.add(node);
    Thread.ofVirtual().name("owlery-log-" + nodeId).start(() -> copyOutput(node));
    return node;
  }

  private void copyOutput(NodeProcess node) {
    try (BufferedReader reader = new BufferedReader(new InputStreamReader(node.process().getInputStream(), StandardCharsets.UTF_8))) {
      for (String line = reader.readLine(); line != null; line = reader.readLine()) {
        if (line.equals(INCUBATOR_WARNING)) {
          continue;
        }
        synchronized (log) {
          log.println("[" + node.nodeId() + "] " + line);
          log.flush();
        }
      }
    } catch (IOException e) {
      // the child is gone; its exit status tells the rest
    }
  }

  private static int freePort() {
    try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getByName(HOST))) {
      socket.setReuseAddress(true);
      return socket.getLocalPort();
    } catch (IOException e) {
      throw new UncheckedIOException("cannot find a free port on " + HOST + ": " + e.getMessage(), e);
    }
  }

  /** Stops every child: a polite SIGTERM first (nodes leave the cluster cleanly), then a kill. */
  @Override
  public void close() {
    List<NodeProcess> reversed = new ArrayList<>(nodes);
    java.util.Collections.reverse(reversed);
    for (NodeProcess node : reversed) {
      node.process().destroy();
    }
    long deadline = System.nanoTime() + STOP_GRACE.toNanos();
    for (NodeProcess node : reversed) {
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
  }
}
