package dev.owlery.coordinator.testing;

import dev.owlery.cluster.membership.MembershipConfig;
import java.nio.file.Path;

/**
 * Starts shard worker nodes for cluster tests: each joins the cluster with {@code membership},
 * serves {@code owlery.internal.v1.ShardWorker} on a loopback port and registers as a
 * SHARD_WORKER. The seam between the coordinator's tests and whichever shard worker they run:
 * {@link FakeShardWorkerNode#launcher} now; the shard-worker module's node once it is merged (a
 * launcher of a few lines starting it with the same arguments).
 */
@FunctionalInterface
public interface ShardWorkerLauncher {

  /** Starts a node serving {@code modelDir} and returns once it is registered. */
  AutoCloseable start(String nodeId, Path modelDir, MembershipConfig membership);
}
