package dev.owlery.coordinator.testing;

import dev.owlery.cluster.membership.MembershipConfig;
import dev.owlery.engine.kernel.KernelsProvider;
import dev.owlery.shard.node.ShardWorkerNode;
import dev.owlery.shard.node.ShardWorkerNodeConfig;
import java.nio.file.Path;

/**
 * Starts shard worker nodes for cluster tests: each joins the cluster with {@code membership},
 * serves {@code owlery.internal.v1.ShardWorker} on a loopback port and registers as a
 * SHARD_WORKER. The seam between the coordinator's tests and whichever shard worker they run:
 * {@link #real()} (the shard-worker module's node) or {@link FakeShardWorkerNode#launcher} (a fake
 * that can be told to stop answering).
 */
@FunctionalInterface
public interface ShardWorkerLauncher {

  /** Starts a node serving {@code modelDir} and returns once it is registered. */
  AutoCloseable start(String nodeId, Path modelDir, MembershipConfig membership);

  /** The real shard worker: tensor-parallel slices joined by gRPC all-reduce, one compute thread. */
  static ShardWorkerLauncher real() {
    return (nodeId, modelDir, membership) -> ShardWorkerNode.start(
        ShardWorkerNodeConfig.of("127.0.0.1", 0, 0, membership).withNodeId(nodeId).withComputeThreads(1));
  }

  /** The real shard worker running the scalar reference kernels (rows bit-identical in any batch). */
  static ShardWorkerLauncher realWithScalarKernels() {
    return (nodeId, modelDir, membership) -> ShardWorkerNode.start(ShardWorkerNodeConfig.of("127.0.0.1", 0, 0,
        membership).withNodeId(nodeId).withComputeThreads(1).withKernels(KernelsProvider.KernelSet.SCALAR));
  }
}
