package dev.owlery.coordinator.testing;

import static org.awaitility.Awaitility.await;

import dev.owlery.client.OwleryClient;
import dev.owlery.cluster.membership.MembershipConfig;
import dev.owlery.cluster.rpc.GrpcServerConfig;
import dev.owlery.cluster.testing.GrpcCleanup;
import dev.owlery.cluster.testing.LoopbackCluster;
import dev.owlery.coordinator.CoordinatorConfig;
import dev.owlery.coordinator.CoordinatorNode;
import dev.owlery.engine.config.ModelConfig;
import dev.owlery.proto.v1.NodeState;
import dev.owlery.proto.v1.ShardGroupStatus;
import dev.owlery.visionworker.VisionWorkerConfig;
import dev.owlery.visionworker.VisionWorkerNode;
import java.nio.file.Path;
import org.awaitility.core.ConditionTimeoutException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.function.UnaryOperator;

/**
 * A whole Owlery cluster in this JVM on loopback, each node with its own Hazelcast member under a
 * fresh cluster name: a coordinator, one vision worker (for mPLUG-Owl2 models) and shard workers from a
 * {@link ShardWorkerLauncher}, plus a client. Everything is registered with the test's {@link
 * GrpcCleanup}.
 */
public final class LoopbackOwlery {

  private final GrpcCleanup cleanup;
  private final Path modelDir;
  private final String clusterName = LoopbackCluster.freshClusterName();
  private final String seed;
  private final ShardWorkerLauncher shards;
  private final UnaryOperator<CoordinatorConfig> tuning;
  private final CoordinatorNode coordinator;
  private final VisionWorkerNode visionWorker;
  private final OwleryClient client;
  private final List<AutoCloseable> shardNodes = new ArrayList<>();

  private LoopbackOwlery(GrpcCleanup cleanup, Path modelDir, Path visionModelDir, ShardWorkerLauncher shards,
      UnaryOperator<CoordinatorConfig> tuning, int numShards) {
    this.cleanup = cleanup;
    this.modelDir = modelDir;
    this.shards = shards;
    this.tuning = tuning;
    // The coordinator starts first; then every other node at once, listing the coordinator's member
    // and its own. (A node that started before the coordinator's member was up would form a cluster
    // of its own and merge seconds later: slower tests.)
    List<Integer> ports = LoopbackCluster.freePorts(numShards + 2);
    this.seed = "127.0.0.1:" + ports.getFirst();
    CoordinatorConfig config = tuning.apply(CoordinatorConfig.of("coordinator-0", modelDir,
        membership(ports.getFirst()), GrpcServerConfig.loopback(), "127.0.0.1", 2));
    List<CompletableFuture<? extends AutoCloseable>> starting = new ArrayList<>();
    try (ExecutorService starter = Executors.newFixedThreadPool(numShards + 2)) {
      starting.add(CompletableFuture.completedFuture(CoordinatorNode.start(config)));
      // A text-only model (plain LLaMA) has no vision tower to serve: no vision worker then.
      starting.add(ModelConfig.load(modelDir).vision() == null ? CompletableFuture.completedFuture(() -> {})
          : CompletableFuture.supplyAsync(() -> VisionWorkerNode.start(VisionWorkerConfig.of("vision-0",
              visionModelDir, membership(ports.get(1)), GrpcServerConfig.loopback(), "127.0.0.1")), starter));
      for (int i = 0; i < numShards; i++) {
        String nodeId = "shard-" + i;
        MembershipConfig membership = membership(ports.get(i + 2));
        starting.add(CompletableFuture.supplyAsync(() -> startShard(nodeId, membership), starter));
      }
    }
    RuntimeException failure = null;
    for (CompletableFuture<? extends AutoCloseable> node : starting) {
      try {
        cleanup.register(node.join());
      } catch (RuntimeException e) {
        failure = failure == null ? e : failure;
      }
    }
    if (failure != null) {
      throw failure;
    }
    this.coordinator = (CoordinatorNode) starting.getFirst().join();
    this.visionWorker = starting.get(1).join() instanceof VisionWorkerNode node ? node : null;
    starting.subList(2, starting.size()).forEach(node -> shardNodes.add(node.join()));
    this.client = cleanup.register(OwleryClient.builder().target(coordinator.grpcAddress())
        .defaultDeadline(Duration.ofSeconds(60)).build());
  }

  /** Starts the cluster with {@code numShards} shard workers; {@code tuning} adjusts the coordinator's config. */
  public static LoopbackOwlery start(GrpcCleanup cleanup, Path modelDir, ShardWorkerLauncher shards, int numShards,
      UnaryOperator<CoordinatorConfig> tuning) {
    return new LoopbackOwlery(cleanup, modelDir, modelDir, shards, tuning, numShards);
  }

  /**
   * As {@link #start(GrpcCleanup, Path, ShardWorkerLauncher, int, UnaryOperator)}, with the vision
   * worker serving {@code visionModelDir} instead (a misconfigured cluster).
   */
  public static LoopbackOwlery start(GrpcCleanup cleanup, Path modelDir, Path visionModelDir,
      ShardWorkerLauncher shards, int numShards, UnaryOperator<CoordinatorConfig> tuning) {
    return new LoopbackOwlery(cleanup, modelDir, visionModelDir, shards, tuning, numShards);
  }

  private MembershipConfig membership(int port) {
    return MembershipConfig.of(clusterName, "127.0.0.1", port, List.of(seed, "127.0.0.1:" + port));
  }

  private AutoCloseable startShard(String nodeId, MembershipConfig membership) {
    try {
      return shards.start(nodeId, modelDir, membership);
    } catch (Exception e) {
      throw new IllegalStateException("shard worker " + nodeId + " did not start: " + e, e);
    }
  }

  /**
   * Starts one more coordinator, tuned as the first, in the same cluster (registered for cleanup)
   * and returns it.
   */
  public CoordinatorNode addCoordinator(String nodeId) {
    return cleanup.register(CoordinatorNode.start(tuning.apply(CoordinatorConfig.of(nodeId, modelDir,
        membership(LoopbackCluster.freePorts(1).getFirst()), GrpcServerConfig.loopback(), "127.0.0.1", 2))));
  }

  /** Starts one more shard worker (registered for cleanup) and returns it. */
  public AutoCloseable addShard(String nodeId) {
    AutoCloseable shard = cleanup.register(startShard(nodeId, membership(LoopbackCluster.freePorts(1).getFirst())));
    shardNodes.add(shard);
    return shard;
  }

  /** The shard worker nodes, in start order ("shard-0", "shard-1", then those added). */
  public List<AutoCloseable> shards() {
    return List.copyOf(shardNodes);
  }

  public CoordinatorNode coordinator() {
    return coordinator;
  }

  /** The vision worker node (none for a text-only model). */
  public VisionWorkerNode visionWorker() {
    if (visionWorker == null) {
      throw new IllegalStateException("a text-only model has no vision worker");
    }
    return visionWorker;
  }

  /** The coordinator's Prometheus endpoint. */
  public String coordinatorMetricsUrl() {
    return "http://127.0.0.1:" + coordinator.metricsPort() + "/metrics";
  }

  public OwleryClient client() {
    return client;
  }

  /** Waits (bounded) until GetClusterStatus shows {@code groupId} in {@code state}, and returns it. */
  public ShardGroupStatus awaitGroup(String groupId, NodeState state, Duration atMost) {
    try {
      return await().atMost(atMost).pollInterval(Duration.ofMillis(50)).until(
          () -> client.getClusterStatus().getGroupsList().stream()
              .filter(group -> group.getGroupId().equals(groupId) && group.getState() == state).findFirst()
              .orElse(null),
          group -> group != null);
    } catch (ConditionTimeoutException e) {
      throw new AssertionError("group %s not %s within %s; the cluster status is:%n%s".formatted(groupId, state, atMost,
          client.getClusterStatus()), e);
    }
  }
}
