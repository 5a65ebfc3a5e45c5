package dev.owlery.cli.node;

import dev.owlery.client.OwleryClient;
import dev.owlery.client.OwleryException;
import dev.owlery.cluster.tls.DevCertificates;
import dev.owlery.engine.cuda.device.DeviceSpec;
import dev.owlery.engine.kernel.KernelsProvider.KernelSet;
import dev.owlery.engine.tensor.WeightFormat;
import dev.owlery.visionworker.HostKernels;
import dev.owlery.proto.v1.GetClusterStatusResponse;
import dev.owlery.proto.v1.NodeRole;
import dev.owlery.proto.v1.NodeState;
import dev.owlery.proto.v1.NodeStatus;
import io.grpc.Status;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;

/**
 * A whole Owlery cluster on this machine as separate processes (one JVM per node, each started as
 * {@code owlery <role>} with the same Java and classpath): a coordinator, {@code numVisionWorkers}
 * vision workers and {@code numShards} shard workers forming one tensor-parallel group, all on
 * loopback with their own Hazelcast member joined through the coordinator's.
 *
 * <p>Once {@link #supervise()} is called (by {@code owlery local}, when the cluster is ready), a
 * child that dies is started again by a {@link NodeSupervisor}, with a line saying which node died
 * and why: a worker under the same node id on fresh ports (placement takes it back as a free
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
  static final String HOST = "127.0.0.1";

  private final Path model;
  private final int numShards;
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
  private final NodeProcesses processes;
  private final Thread shutdownHook = new Thread(this::close, "owlery-local-shutdown");
  private final Object lock = new Object();
  /** Restarts dead children once {@link #supervise()} was called; null before. Guarded by lock. */
  private NodeSupervisor supervisor;
  /** Set by the first {@link #close()}; no supervisor starts after it. Guarded by lock. */
  private boolean closed;
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
  /** How the workers hold their weight matrices. */
  private final WeightFormat weights;
  private final DeviceList devices; // null: every shard on the CPU
  private final List<DeviceSpec> visionDevices; // empty: every vision worker on the CPU
  private final HostKernels visionKernels;
  private final KernelSet shardKernels;
  private int nextShardIndex;

  private LocalCluster(Path model, int numShards, PrintWriter log, LocalClusterOptions options) {
    this.apiKey = options.apiKey();
    String suffix = UUID.randomUUID().toString().substring(0, 8);
    this.model = model.toAbsolutePath();
    this.numShards = numShards;
    this.suffix = suffix;
    this.log = log;
    this.weights = options.weights();
    this.devices = options.devices();
    this.visionDevices = options.visionDevices();
    this.visionKernels = options.visionKernels();
    this.shardKernels = options.shardKernels();
    this.processes = new NodeProcesses("owlery-local-" + suffix, log, options.jvmOptions(), options.certs());
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
    return start(model, numShards, numVisionWorkers, port, log, LocalClusterOptions.DEFAULT.withJvmOptions(jvmOptions));
  }

  /**
   * As {@link #start(Path, int, int, int, PrintWriter, List)}, with {@code coordinatorArgs} added to
   * the coordinator's command line (e.g. {@code --max-num-seqs=32}, {@code --kv-cache-tokens=8192}).
   */
  public static LocalCluster start(Path model, int numShards, int numVisionWorkers, int port, PrintWriter log,
      List<String> jvmOptions, List<String> coordinatorArgs) {
    return start(model, numShards, numVisionWorkers, port, log,
        LocalClusterOptions.DEFAULT.withJvmOptions(jvmOptions).withCoordinatorArgs(coordinatorArgs));
  }

  /**
   * As {@link #start(Path, int, int, int, PrintWriter, List)}, as {@code options} say. With {@link
   * LocalClusterOptions#certs()}, TLS runs on every link: each node gets a certificate, as it
   * starts, from the development CA in that folder ({@link DevCertificates}; the CA is made when
   * the folder has none), the links between nodes use mutual TLS, and the coordinator serves its
   * public API over TLS only; clients trust {@link #tlsCa()}.
   */
  public static LocalCluster start(Path model, int numShards, int numVisionWorkers, int port, PrintWriter log,
      LocalClusterOptions options) {
    if (numShards < 1) {
      throw new IllegalArgumentException("--shards must be >= 1, got " + numShards);
    }
    if (numVisionWorkers < 0) {
      throw new IllegalArgumentException("--vision-workers must be >= 0, got " + numVisionWorkers);
    }
    LocalCluster cluster = new LocalCluster(model, numShards, log, options);
    Runtime.getRuntime().addShutdownHook(cluster.shutdownHook);
    try {
      cluster.coordinatorPort = port == 0 ? LoopbackPorts.freePort() : port;
      cluster.coordinatorClusterPort = LoopbackPorts.freePort();
      cluster.coordinatorMetricsPort = LoopbackPorts.freePort();
      // One group unless the coordinator arguments size the groups: shard workers started beyond
      // it (startShardWorker) are standbys.
      List<String> coordinatorArgs = options.coordinatorArgs();
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
        cluster.launchWorker("vision-" + v, "vision-worker");
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
        processes.requireNotClosed();
        if (!coordinator.process().isAlive()) {
          throw processes.exitedEarly(coordinator, "while starting");
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

  private LocalClusterException portInUse() {
    return LoopbackPorts.portInUse(coordinatorPort);
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
    return launchWorker("shard-" + nextShardIndex++, "shard-worker");
  }

  /** Starts a shard or vision worker on fresh ports, joining through the coordinator. */
  private NodeProcess launchWorker(String nodeId, String role) {
    List<String> roleArgs = new ArrayList<>(List.of("--weights", weights.flagName()));
    if (role.equals("vision-worker")) {
      roleArgs.addAll(List.of("--model", model.toString()));
      if (visionKernels != HostKernels.VECTOR) {
        roleArgs.addAll(List.of("--kernels", visionKernels.flagName()));
      }
      if (!visionDevices.isEmpty()) {
        // vision-i keeps its device across restarts; with shards on devices too, it shares theirs
        int index = Integer.parseInt(nodeId.substring("vision-".length()));
        roleArgs.addAll(devices == null ? List.of("--device", visionDevices.get(index).flagValue())
            : devices.visionArgs(index, visionDevices));
      }
    }
    if (role.equals("shard-worker") && shardKernels != KernelSet.AUTO) {
      roleArgs.addAll(List.of("--kernels", shardKernels.flagValue()));
    }
    if (role.equals("shard-worker") && devices != null) {
      // shard-i keeps its device across restarts
      roleArgs.addAll(devices.shardArgs(Integer.parseInt(nodeId.substring("shard-".length())), visionDevices));
    }
    return processes.launch(nodeId, role, LoopbackPorts.freePort(), LoopbackPorts.freePort(), LoopbackPorts.freePort(),
        seedMembers(), roleArgs);
  }

  /**
   * Starts another coordinator of this cluster, with the first's arguments, on ports of its own
   * (node id {@code coordinator-<hex>-c<n>}); it joins through the coordinators' members, and nodes
   * started later list its member too. Returns at once; its public address is {@code HOST:grpcPort}.
   * Under {@link #supervise} it is restarted on the same ports under the same node id.
   */
  public NodeProcess startCoordinator() {
    String nodeId;
    int clusterPort = LoopbackPorts.freePort();
    synchronized (lock) {
      nodeId = "coordinator-%s-c%d".formatted(suffix, extraCoordinatorPorts.size() + 1);
      coordinatorIds.add(nodeId);
      extraCoordinatorPorts.add(clusterPort);
    }
    return processes.launch(nodeId, "coordinator", LoopbackPorts.freePort(), LoopbackPorts.freePort(), clusterPort,
        seedMembers(), coordinatorCommand);
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
    return processes.launch(coordinatorId, "coordinator", coordinatorPort, coordinatorMetricsPort, coordinatorClusterPort,
        join, coordinatorCommand);
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
    return processes.tlsCa();
  }

  /**
   * Writes {@code {"coordinator": "HOST:PORT", "nodes": [{"role", "address", "metrics"}]}}
   * atomically, with {@code "tls_ca"} (the CA file clients trust) when the cluster runs TLS.
   */
  public void writeReadyFile(Path file, GetClusterStatusResponse status) {
    ReadyFile.write(file, coordinatorAddress(), tlsCa(), status);
  }

  /** The coordinator's public address, HOST:PORT. */
  public String coordinatorAddress() {
    return HOST + ":" + coordinatorPort;
  }

  /** Every child started and not replaced by a restart, in start order. */
  public List<NodeProcess> nodes() {
    return processes.all();
  }

  /** The running process of node {@code nodeId} (a restarted node's newest). */
  public NodeProcess liveNode(String nodeId) {
    return nodes().stream().filter(node -> node.nodeId().equals(nodeId) && node.process().isAlive()).findFirst()
        .orElseThrow(() -> new IllegalArgumentException("no running node " + nodeId + " in this local cluster"));
  }

  /** Kills a node's process at once, as a crash would (no graceful leave); the supervisor leaves it dead. */
  public void kill(NodeProcess node) {
    processes.kill(node);
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
        processes.requireNotClosed();
        for (NodeProcess node : nodes()) {
          if (!node.process().isAlive() && !processes.wasKilled(node) && !supervising()) {
            throw processes.exitedEarly(node, "before the cluster was ready");
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
   * it in 500 ms" to the log ({@link NodeSupervisor}). Calling it again does nothing.
   */
  public void supervise() {
    synchronized (lock) {
      if (supervisor == null && !closed) {
        supervisor = NodeSupervisor.start(processes, log, this::restart);
      }
    }
  }

  private boolean supervising() {
    synchronized (lock) {
      return supervisor != null;
    }
  }

  /** Starts a dead child again: a worker under its node id on fresh ports, the coordinator on its own. */
  private void restart(NodeProcess dead) {
    if (dead.role().equals("coordinator") && !dead.nodeId().equals(coordinatorId)) {
      processes.launch(dead.nodeId(), "coordinator", dead.grpcPort(), dead.metricsPort(), dead.clusterPort(),
          seedMembers(), coordinatorCommand);
    } else if (dead.role().equals("coordinator")) {
      List<String> survivors = nodes().stream().filter(node -> node.process().isAlive())
          .map(node -> HOST + ":" + node.clusterPort()).toList();
      synchronized (lock) {
        numRestarts++;
      }
      launchCoordinator(survivors);
    } else {
      launchWorker(dead.nodeId(), dead.role());
    }
    processes.replaced(dead);
  }

  /**
   * {@code java <flags> <jvmOptions> -cp <classpath> dev.owlery.cli.Owlery}, to which the arguments
   * are added; the classpath is this JVM's unless {@link NodeAotCaches#CLASSPATH} gives another.
   */
  static List<String> owleryCommand(List<String> jvmOptions) {
    List<String> command = javaCommand(jvmOptions);
    command.add("dev.owlery.cli.Owlery");
    return command;
  }

  /**
   * {@code java <flags> <jvmOptions> -cp <classpath> dev.owlery.cli.Owlery <role>}, starting from
   * the role's {@link NodeAotCaches AOT cache} where there is one; the node's arguments are added.
   */
  static List<String> nodeCommand(String role, List<String> jvmOptions) {
    List<String> options = new ArrayList<>(NodeAotCaches.options(role));
    options.addAll(jvmOptions);
    List<String> command = javaCommand(options);
    command.addAll(List.of("dev.owlery.cli.Owlery", role));
    return command;
  }

  /** {@code java <flags> <jvmOptions> -cp <classpath>}: the JVM of {@link #owleryCommand}. */
  static List<String> javaCommand(List<String> jvmOptions) {
    List<String> command = new ArrayList<>();
    command.add(ProcessHandle.current().info().command().orElse(Path.of(System.getProperty("java.home"), "bin", "java").toString()));
    command.addAll(List.of("--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
        "--sun-misc-unsafe-memory-access=allow", "-XX:+UseParallelGC"));
    command.addAll(HAZELCAST_ACCESS);
    command.addAll(NodeAotCaches.inherited());
    command.addAll(jvmOptions);
    command.addAll(List.of("-cp", NodeAotCaches.classpath()));
    return command;
  }

  /**
   * Stops the supervisor, then every child: a polite SIGTERM first (nodes leave the cluster
   * cleanly), then a kill. Called again (or from the shutdown hook while another call runs), waits
   * for the first call.
   */
  @Override
  public void close() {
    NodeSupervisor stopping;
    synchronized (lock) {
      closed = true;
      stopping = supervisor;
    }
    if (stopping != null) {
      stopping.stop();
    }
    try {
      Runtime.getRuntime().removeShutdownHook(shutdownHook);
    } catch (IllegalStateException shuttingDown) {
      // this is the hook, or the JVM is running it: it finds the cluster closing and waits
    }
    processes.close();
  }

  /** Blocks until {@link #close()} has stopped every child, e.g. from the shutdown hook on Ctrl-C. */
  public void awaitClosed() throws InterruptedException {
    processes.awaitClosed();
  }
}
