package dev.owlery.cli.node;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.owlery.client.OwleryClient;
import dev.owlery.client.OwleryException;
import dev.owlery.cluster.tls.DevCertificates;
import dev.owlery.proto.v1.GetClusterStatusResponse;
import dev.owlery.proto.v1.NodeRole;
import dev.owlery.proto.v1.NodeState;
import dev.owlery.proto.v1.NodeStatus;
import io.grpc.Status;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;

/**
 * A whole Owlery cluster on this machine as separate processes (one JVM per node, each started as
 * {@code owlery <role>} with the same Java and classpath): a coordinator, {@code numVisionWorkers}
 * vision workers and {@code numShards} shard workers forming one tensor-parallel group, all on
 * loopback with their own Hazelcast member joined through the coordinator's.
 *
 * <p>Once {@link #supervise()} is called (by {@code owlery local}, when the cluster is ready), a
 * child that dies is started again after a {@link RestartBackoff}, with a line saying which node
 * died and why: a worker under the same node id on fresh ports (placement takes it back as a free
 * shard worker), the coordinator on its own ports under a new node id, as {@link
 * #restartCoordinator} does. So a local cluster heals without standby shards.
 *
 * <p>The children live no longer than this process: {@link #close()} stops them, a shutdown hook
 * closes the cluster on SIGINT/SIGTERM (during start-up too), and each child is started with
 * {@code --parent-pid} so that it exits by itself when this process dies without running hooks
 * (SIGKILL, a crash).
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
  private static final String HOST = "127.0.0.1";
  /** Nodes' ports come from here: below Linux's default ephemeral range (32768-60999), above the well-known ones. */
  private static final int PORTS_FROM = 20_000;
  private static final int PORTS_UNTIL = 32_768;
  /** Ports this process has handed out, never handed out again (nodes of earlier clusters may still hold them). */
  private static final Set<Integer> PORTS_GIVEN = new HashSet<>();
  private static final Duration STOP_GRACE = Duration.ofSeconds(10);
  /** How long the certificates a TLS cluster gives its nodes are valid. */
  private static final Duration CERTIFICATE_VALIDITY = Duration.ofDays(30);
  /** How long a failure report waits for the rest of an exited node's output. */
  private static final Duration OUTPUT_DRAIN = Duration.ofSeconds(2);

  private final Path model;
  private final int numShards;
  private final String clusterName;
  /**
   * Unique to this cluster, so that the ready check knows its own coordinator from another one on
   * the port; a restarted coordinator gets a new one ({@link #restartCoordinator}).
   */
  private volatile String coordinatorId;
  /** Every coordinator id this cluster used, the current one last; guarded by lock. */
  private final List<String> coordinatorIds = new ArrayList<>();
  /** Names this cluster's Hazelcast cluster and coordinators. */
  private final String suffix;
  private final PrintWriter log;
  private final List<String> jvmOptions;
  private final Thread shutdownHook = new Thread(this::close, "owlery-local-shutdown");
  private final CountDownLatch stopped = new CountDownLatch(1);
  private final Object lock = new Object();
  /** Every child started, in start order; guarded by lock. */
  private final List<NodeProcess> nodes = new ArrayList<>();
  /** By node id; guarded by lock. */
  private final Map<String, NodeOutput> outputs = new HashMap<>();
  /** Node ids stopped on purpose by {@link #kill}, never restarted; guarded by lock. */
  private final Set<String> killed = new HashSet<>();
  /** When each child was started ({@link System#nanoTime()}), by node id; guarded by lock. */
  private final Map<String, Long> startedAt = new HashMap<>();
  /** Dead children whose restart is scheduled; guarded by lock. */
  private final Set<NodeProcess> restarting = new HashSet<>();
  /** Restarts dead children once {@link #supervise()} was called; null before. Guarded by lock. */
  private ScheduledExecutorService supervisor;
  /** Owned by the supervisor's thread. */
  private final RestartBackoff backoff = new RestartBackoff();
  /** Set by the first {@link #close()}; no child starts after it. Guarded by lock. */
  private boolean closing;
  private int coordinatorClusterPort;
  /** Cluster ports of the coordinators {@link #startCoordinator} started; guarded by lock. */
  private final List<Integer> extraCoordinatorPorts = new ArrayList<>();
  private int coordinatorPort;
  private int coordinatorMetricsPort;
  /** The coordinator's own options: the model, the group size and those the caller added. */
  private List<String> coordinatorCommand;
  private int numRestarts;
  /** The key this cluster's own calls send (null: none), for a coordinator started with --api-keys. */
  private final String apiKey;
  /** Where the development CA and the nodes' certificates lie; null: every link is plaintext. */
  private final Path certs;
  private int nextShardIndex;

  private LocalCluster(Path model, int numShards, PrintWriter log, List<String> jvmOptions, String apiKey, Path certs) {
    this.apiKey = apiKey;
    this.certs = certs;
    String suffix = UUID.randomUUID().toString().substring(0, 8);
    this.model = model.toAbsolutePath();
    this.numShards = numShards;
    this.suffix = suffix;
    this.clusterName = "owlery-local-" + suffix;
    this.log = log;
    this.jvmOptions = List.copyOf(jvmOptions);
  }

  /**
   * Starts every node; returns once the coordinator answers and the workers are launched (see
   * {@link #awaitReady}).
   *
   * @param port the coordinator's public gRPC port, 0 for a free one
   * @param log where the children's output goes, each line prefixed by its node id
   * @param jvmOptions extra options for every child JVM (e.g. -Xmx)
   * @throws LocalClusterException when the port is taken or a node exits while starting; every
   *     child started is stopped
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
    return start(model, numShards, numVisionWorkers, port, log, jvmOptions, coordinatorArgs, null);
  }

  /**
   * As {@link #start(Path, int, int, int, PrintWriter, List, List)}, for a coordinator started with
   * {@code --api-keys} among {@code coordinatorArgs}: this cluster's own calls send {@code apiKey}.
   */
  public static LocalCluster start(Path model, int numShards, int numVisionWorkers, int port, PrintWriter log,
      List<String> jvmOptions, List<String> coordinatorArgs, String apiKey) {
    return start(model, numShards, numVisionWorkers, port, log, jvmOptions, coordinatorArgs, apiKey, null);
  }

  /**
   * As {@link #start(Path, int, int, int, PrintWriter, List, List, String)}, with TLS on every link
   * when {@code certs} is not null: each node gets a certificate, as it starts, from the
   * development CA in that folder ({@link DevCertificates}; the CA is made when the folder has
   * none), the links between nodes use mutual TLS, and the coordinator serves its public API over
   * TLS only; clients trust {@link #tlsCa()}.
   */
  public static LocalCluster start(Path model, int numShards, int numVisionWorkers, int port, PrintWriter log,
      List<String> jvmOptions, List<String> coordinatorArgs, String apiKey, Path certs) {
    if (numShards < 1) {
      throw new IllegalArgumentException("--shards must be >= 1, got " + numShards);
    }
    if (numVisionWorkers < 0) {
      throw new IllegalArgumentException("--vision-workers must be >= 0, got " + numVisionWorkers);
    }
    LocalCluster cluster = new LocalCluster(model, numShards, log, jvmOptions, apiKey,
        certs == null ? null : certs.toAbsolutePath());
    Runtime.getRuntime().addShutdownHook(cluster.shutdownHook);
    try {
      cluster.coordinatorPort = port == 0 ? freePort() : port;
      cluster.coordinatorClusterPort = freePort();
      cluster.coordinatorMetricsPort = freePort();
      // One group unless coordinatorArgs size the groups: shard workers started beyond it
      // (startShardWorker) are standbys.
      List<String> coordinatorCommand = new ArrayList<>(List.of("--model", cluster.model.toString()));
      if (!coordinatorArgs.contains("--group-size") && !coordinatorArgs.contains("--max-groups")) {
        coordinatorCommand.addAll(List.of("--group-size", String.valueOf(numShards), "--max-groups", "1"));
      }
      coordinatorCommand.addAll(coordinatorArgs);
      cluster.coordinatorCommand = List.copyOf(coordinatorCommand);
      cluster.launchCoordinator(List.of());
      // Workers join through the coordinator's Hazelcast member: start them once it is up, or
      // they form clusters of their own first and Hazelcast has to merge them (slow and noisy).
      cluster.awaitCoordinator(Duration.ofSeconds(120));
      for (int v = 0; v < numVisionWorkers; v++) {
        cluster.launch("vision-" + v, "vision-worker", freePort(), freePort(), freePort(), cluster.seedMembers(),
            List.of("--model", cluster.model.toString()));
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

  /**
   * Waits until this cluster's coordinator answers on its public port, known by its node id in the
   * registry it reports. Fails at once when another server answers there (the port was taken, and
   * our coordinator cannot bind it), and when the coordinator exits (with what it printed last).
   */
  private void awaitCoordinator(Duration timeout) {
    NodeProcess coordinator = coordinator();
    long deadline = System.nanoTime() + timeout.toNanos();
    try (OwleryClient client = ownClient()) {
      while (true) {
        requireNotClosed();
        if (!coordinator.process().isAlive()) {
          throw exitedEarly(coordinator, "while starting");
        }
        String lastAnswer;
        try {
          List<String> listed = client.getClusterStatus().getNodesList().stream()
              .filter(n -> n.getRole() == NodeRole.NODE_ROLE_COORDINATOR).map(NodeStatus::getNodeId).toList();
          if (listed.contains(coordinatorId)) {
            return;
          }
          if (!ownCoordinatorIds().containsAll(listed)) {
            throw portInUse(); // another cluster's coordinator; ours cannot bind the port
          }
          lastAnswer = "the coordinator has not registered yet";
        } catch (OwleryException e) {
          if (e.code() == Status.Code.UNIMPLEMENTED) {
            throw portInUse(); // a gRPC server that is no Owlery coordinator
          }
          lastAnswer = e.getMessage();
        }
        if (System.nanoTime() > deadline) {
          throw new LocalClusterException("the coordinator did not answer on %s within %d s: %s"
              .formatted(coordinatorAddress(), timeout.toSeconds(), lastAnswer));
        }
        pause();
      }
    }
  }

  /**
   * Fails when something listens on {@code port} already: checked before a cluster is started on a
   * port the user chose, so that the answer comes at once, with no child started.
   *
   * @throws LocalClusterException naming the port
   */
  public static void requirePortFree(int port) {
    try (ServerSocket socket = new ServerSocket(port, 1, InetAddress.getByName(HOST))) {
      // free: closed again at once
    } catch (IOException e) {
      throw portInUse(port);
    }
  }

  private LocalClusterException portInUse() {
    return portInUse(coordinatorPort);
  }

  private static LocalClusterException portInUse(int port) {
    return new LocalClusterException("port %d is already in use (another coordinator?); choose another with --port"
        .formatted(port));
  }

  /** "shard-0 (shard-worker) exited with status 2 while starting; its last lines:" and those lines. */
  private LocalClusterException exitedEarly(NodeProcess node, String when) {
    NodeOutput output;
    synchronized (lock) {
      output = outputs.get(node.nodeId());
    }
    List<String> lines = output.lastLines(OUTPUT_DRAIN);
    String said = lines.isEmpty() ? "it printed nothing" : "its last lines:%n  %s".formatted(String.join(System.lineSeparator() + "  ", lines));
    return new LocalClusterException("%s (%s) exited with status %d %s; %s"
        .formatted(node.nodeId(), node.role(), node.process().exitValue(), when, said));
  }

  private void requireNotClosed() {
    synchronized (lock) {
      if (closing) {
        throw new LocalClusterException("the local cluster was stopped while starting");
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

  /** Starts one more shard worker process: a replacement after a failure, or a standby beyond the group. */
  public NodeProcess startShardWorker() {
    return launch("shard-" + nextShardIndex++, "shard-worker", freePort(), freePort(), freePort(), seedMembers(),
        List.of());
  }

  /**
   * Starts another coordinator of this cluster, with the first's arguments, on ports of its own
   * (node id {@code coordinator-<hex>-c<n>}); it joins through the coordinators' members, and nodes
   * started later list its member too. Returns at once; its public address is {@code HOST:grpcPort}.
   * Under {@link #supervise} it is restarted on the same ports under the same node id.
   */
  public NodeProcess startCoordinator() {
    String nodeId;
    int clusterPort = freePort();
    synchronized (lock) {
      nodeId = "coordinator-%s-c%d".formatted(suffix, extraCoordinatorPorts.size() + 1);
      coordinatorIds.add(nodeId);
      extraCoordinatorPorts.add(clusterPort);
    }
    return launch(nodeId, "coordinator", freePort(), freePort(), clusterPort, seedMembers(), coordinatorCommand);
  }

  /**
   * Kills the coordinator, as a crash would, and starts a new one on the same gRPC, metrics and
   * cluster ports under a new node id, joining the Hazelcast members that are left (the workers
   * keep theirs); returns once the new one answers on the public port. Its placement then forms
   * the shard group anew from the same workers: wait for that with {@link #awaitReady}.
   *
   * @return the new coordinator
   * @throws LocalClusterException when the new coordinator exits while starting or does not answer
   *     within {@code timeout}
   */
  public NodeProcess restartCoordinator(Duration timeout) {
    kill(coordinator());
    List<String> survivors = nodes().stream().filter(node -> node.process().isAlive())
        .map(node -> HOST + ":" + node.clusterPort()).toList();
    synchronized (lock) {
      numRestarts++;
    }
    NodeProcess coordinator = launchCoordinator(survivors);
    awaitCoordinator(timeout);
    return coordinator;
  }

  /**
   * Starts a coordinator on this cluster's coordinator ports, joining through {@code members} (and
   * its own cluster port, which the first one forms the cluster on).
   */
  private NodeProcess launchCoordinator(List<String> members) {
    synchronized (lock) {
      coordinatorId = numRestarts == 0 ? "coordinator-" + suffix : "coordinator-%s-%d".formatted(suffix, numRestarts);
      coordinatorIds.add(coordinatorId);
    }
    List<String> join = new ArrayList<>(seedMembers());
    join.addAll(members);
    return launch(coordinatorId, "coordinator", coordinatorPort, coordinatorMetricsPort, coordinatorClusterPort, join,
        coordinatorCommand);
  }

  private List<String> ownCoordinatorIds() {
    synchronized (lock) {
      return List.copyOf(coordinatorIds);
    }
  }

  /** The coordinator started last. */
  private NodeProcess coordinator() {
    return nodes().stream().filter(node -> node.nodeId().equals(coordinatorId)).findFirst().orElseThrow();
  }

  /** What every node joins the cluster through: the coordinators' Hazelcast members. */
  private List<String> seedMembers() {
    List<String> seeds = new ArrayList<>(List.of(HOST + ":" + coordinatorClusterPort));
    synchronized (lock) {
      extraCoordinatorPorts.forEach(port -> seeds.add(HOST + ":" + port));
    }
    return seeds;
  }

  /** A client for this cluster's own status calls: its key, its CA, 2 s per call. */
  private OwleryClient ownClient() {
    return OwleryClient.builder().target(coordinatorAddress()).apiKey(apiKey).trustedCertificates(tlsCa())
        .defaultDeadline(Duration.ofSeconds(2)).build();
  }

  /** The CA certificate clients of a TLS cluster trust; null when the cluster runs in plaintext. */
  public Path tlsCa() {
    return certs == null ? null : DevCertificates.caCertificate(certs);
  }

  /** The coordinator's public address, HOST:PORT. */
  public String coordinatorAddress() {
    return HOST + ":" + coordinatorPort;
  }

  public List<NodeProcess> nodes() {
    synchronized (lock) {
      return List.copyOf(nodes);
    }
  }

  /** Kills a node's process at once, as a crash would (no graceful leave). */
  public void kill(NodeProcess node) {
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

  /**
   * Waits until the coordinator reports a READY shard group of {@code numShards} ranks and
   * {@code numVisionWorkers} READY vision workers; fails naming a child that exited meanwhile
   * (other than those {@link #kill}ed), with its last lines.
   */
  public GetClusterStatusResponse awaitReady(int numVisionWorkers, Duration timeout) {
    long deadline = System.nanoTime() + timeout.toNanos();
    String lastState = "no answer from the coordinator yet";
    try (OwleryClient client = ownClient()) {
      while (System.nanoTime() < deadline) {
        requireNotClosed();
        for (NodeProcess node : nodes()) {
          if (!node.process().isAlive() && !wasKilled(node) && !supervising()) {
            throw exitedEarly(node, "before the cluster was ready");
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
    throw new LocalClusterException("the local cluster was not ready within %d s (%s)".formatted(timeout.toSeconds(), lastState));
  }

  /**
   * From now on restarts every child that dies (but those {@link #kill}ed), after a backoff, writing
   * "owlery local: shard-1 (shard-worker) died with exit status 137 (killed by signal 9); restarting
   * it in 500 ms" to the log. Calling it again does nothing.
   */
  public void supervise() {
    synchronized (lock) {
      if (supervisor != null || closing) {
        return;
      }
      supervisor = Executors.newSingleThreadScheduledExecutor(
          Thread.ofPlatform().name("owlery-local-supervisor").daemon().factory());
      supervisor.scheduleWithFixedDelay(this::restartDeadNodes, 0, 200, TimeUnit.MILLISECONDS);
    }
  }

  private boolean supervising() {
    synchronized (lock) {
      return supervisor != null;
    }
  }

  /** Schedules a restart of each child found dead (on the supervisor's thread). */
  private void restartDeadNodes() {
    for (NodeProcess node : nodes()) {
      long lived;
      synchronized (lock) {
        if (closing) {
          return;
        }
        if (node.process().isAlive() || killed.contains(node.nodeId()) || !restarting.add(node)) {
          continue;
        }
        lived = System.nanoTime() - startedAt.get(node.nodeId());
      }
      Duration wait = backoff.next(node.nodeId(), Duration.ofNanos(lived));
      int status = node.process().exitValue();
      String why = status > 128 ? " (killed by signal %d)".formatted(status - 128) : "";
      List<String> lastLines = outputOf(node).lastLines(Duration.ZERO);
      String said = lastLines.isEmpty() ? "" : "; its last line: " + lastLines.getLast();
      log.printf("owlery local: %s (%s) died with exit status %d%s after %d s%s; restarting it in %d ms (restart %d)%n",
          node.nodeId(), node.role(), status, why, TimeUnit.NANOSECONDS.toSeconds(lived), said, wait.toMillis(),
          backoff.numQuickRestarts(node.nodeId()));
      log.flush();
      supervisor.schedule(() -> restart(node), wait.toMillis(), TimeUnit.MILLISECONDS);
    }
  }

  /** Starts a dead child again: a worker under its node id on fresh ports, the coordinator on its own. */
  private void restart(NodeProcess dead) {
    try {
      if (dead.role().equals("coordinator") && !dead.nodeId().equals(coordinatorId)) {
        launch(dead.nodeId(), "coordinator", dead.grpcPort(), dead.metricsPort(), dead.clusterPort(), seedMembers(),
            coordinatorCommand);
      } else if (dead.role().equals("coordinator")) {
        List<String> survivors = nodes().stream().filter(node -> node.process().isAlive())
            .map(node -> HOST + ":" + node.clusterPort()).toList();
        synchronized (lock) {
          numRestarts++;
        }
        launchCoordinator(survivors);
      } else {
        List<String> roleArgs = dead.role().equals("vision-worker") ? List.of("--model", model.toString()) : List.of();
        launch(dead.nodeId(), dead.role(), freePort(), freePort(), freePort(), seedMembers(), roleArgs);
      }
      synchronized (lock) {
        nodes.remove(dead);
      }
    } catch (RuntimeException e) {
      synchronized (lock) {
        if (closing) {
          return; // stopped meanwhile: nothing to restart
        }
      }
      log.printf("owlery local: restarting %s failed: %s%n", dead.nodeId(), e.getMessage());
      log.flush();
    } finally {
      synchronized (lock) {
        restarting.remove(dead); // on failure, the next round finds it dead again and waits longer
      }
    }
  }

  private NodeOutput outputOf(NodeProcess node) {
    synchronized (lock) {
      return outputs.get(node.nodeId());
    }
  }

  private boolean wasKilled(NodeProcess node) {
    synchronized (lock) {
      return killed.contains(node.nodeId());
    }
  }

  /**
   * Writes {@code {"coordinator": "HOST:PORT", "nodes": [{"role", "address", "metrics"}]}}
   * atomically, with {@code "tls_ca"} (the CA file clients trust) when the cluster runs TLS.
   */
  public void writeReadyFile(Path file, GetClusterStatusResponse status) {
    ObjectMapper json = new ObjectMapper();
    ObjectNode root = json.createObjectNode();
    root.put("coordinator", coordinatorAddress());
    if (certs != null) {
      root.put("tls_ca", tlsCa().toString());
    }
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

  private NodeProcess launch(String nodeId, String role, int grpcPort, int metricsPort, int clusterPort,
      List<String> members, List<String> roleArgs) {
    List<String> command = owleryCommand(jvmOptions);
    command.addAll(List.of(role, "--node-id", nodeId, "--host", HOST, "--port", String.valueOf(grpcPort),
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

  /** {@code java <flags> <jvmOptions> -cp <this JVM's classpath> dev.owlery.cli.Owlery}, to which the arguments are added. */
  static List<String> owleryCommand(List<String> jvmOptions) {
    List<String> command = new ArrayList<>();
    command.add(ProcessHandle.current().info().command().orElse(Path.of(System.getProperty("java.home"), "bin", "java").toString()));
    command.addAll(List.of("--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
        "--sun-misc-unsafe-memory-access=allow", "-XX:+UseParallelGC"));
    command.addAll(HAZELCAST_ACCESS);
    command.addAll(jvmOptions);
    command.addAll(List.of("-cp", System.getProperty("java.class.path"), "dev.owlery.cli.Owlery"));
    return command;
  }

  /**
   * A port free now, below the kernel's ephemeral range and not handed out before by this process: a
   * node binds it a second or two later, when its JVM is up, and a port from the ephemeral range
   * (what binding port 0 gives) can meanwhile be taken by any outgoing connection on the machine,
   * the nodes' own included (seen in CI: a shard worker's Hazelcast port was taken before it bound).
   */
  private static int freePort() {
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
   * Stops every child: a polite SIGTERM first (nodes leave the cluster cleanly), then a kill.
   * Called again (or from the shutdown hook while another call runs), waits for the first call.
   */
  @Override
  public void close() {
    List<NodeProcess> running;
    synchronized (lock) {
      if (closing) {
        running = null;
      } else {
        closing = true;
        running = List.copyOf(nodes).reversed();
      }
    }
    if (running == null) {
      awaitStopped(STOP_GRACE.plusSeconds(5));
      return;
    }
    ScheduledExecutorService stopping;
    synchronized (lock) {
      stopping = supervisor;
    }
    if (stopping != null) {
      stopping.shutdownNow(); // closing is set: a restart under way starts no child
    }
    try {
      Runtime.getRuntime().removeShutdownHook(shutdownHook);
    } catch (IllegalStateException shuttingDown) {
      // this is the hook, or the JVM is running it: it finds the cluster closing and waits
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

  /** Blocks until {@link #close()} has stopped every child, e.g. from the shutdown hook on Ctrl-C. */
  public void awaitClosed() throws InterruptedException {
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
