package dev.owlery.shard.node;

import dev.owlery.engine.kernel.KernelsProvider;
import dev.owlery.engine.kernel.KernelsProvider.KernelSet;
import dev.owlery.cluster.membership.MembershipConfig;
import dev.owlery.cluster.tls.ReloadingTls;
import io.grpc.InsecureServerCredentials;
import io.grpc.ServerCredentials;
import dev.owlery.shard.worker.ShardWorkerConfig;
import java.time.Duration;

/**
 * How a shard worker node starts.
 *
 * @param nodeId unique in the cluster, e.g. "shard-0" (the registry key and the metrics tag)
 * @param host the interface the gRPC server and /metrics bind, also the address published in the
 *     registry (so not a wildcard like 0.0.0.0)
 * @param grpcPort 0..65535; 0 picks a free port
 * @param metricsPort 0..65535; 0 picks a free port
 * @param membership how the node joins the Hazelcast cluster
 * @param worker model-folder allow-list, all-reduce timeouts, call queue
 * @param computeThreads threads of the kernels' compute pool, >= 1 (the physical cores to use)
 * @param kernels which kernels run the slice: VECTOR (the fast ones) or SCALAR (the reference, whose
 *     rows are bit-identical however steps are batched)
 * @param credentials the gRPC server's: plaintext, or the cluster's mutual TLS ({@link #withClusterTls})
 * @param drainTimeout how long {@link ShardWorkerNode#close()} waits, DRAINING, for placement to take
 *     the node out of its group (its sequences handed over) before it leaves anyway
 */
public record ShardWorkerNodeConfig(
    String nodeId, String host, int grpcPort, int metricsPort, MembershipConfig membership, ShardWorkerConfig worker,
    int computeThreads, KernelSet kernels, ServerCredentials credentials, Duration drainTimeout) {

  public ShardWorkerNodeConfig {
    if (nodeId == null || nodeId.isBlank()) {
      throw new IllegalArgumentException("nodeId must not be blank. Given: '" + nodeId + "'");
    }
    if (host == null || host.isBlank() || host.equals("0.0.0.0") || host.equals("::")) {
      throw new IllegalArgumentException("host must be an address peers can reach, not blank or a wildcard. Given: '"
          + host + "'");
    }
    requirePort("grpcPort", grpcPort);
    requirePort("metricsPort", metricsPort);
    if (membership == null || worker == null) {
      throw new IllegalArgumentException("membership and worker configs must be set. Given: " + membership + ", " + worker);
    }
    if (computeThreads < 1) {
      throw new IllegalArgumentException("computeThreads must be >= 1. Given: " + computeThreads);
    }
    if (kernels == null || credentials == null) {
      throw new IllegalArgumentException("kernels and credentials must be set. Given: " + kernels + ", " + credentials);
    }
    if (drainTimeout == null || drainTimeout.isNegative()) {
      throw new IllegalArgumentException("drainTimeout must be a duration >= 0. Given: " + drainTimeout);
    }
  }

  /**
   * A plaintext node on {@code host} with the worker defaults (any model folder), one compute thread
   * per processor, the kernels {@code -Dowlery.kernels} names (auto by default) and 30 s to drain.
   */
  public static ShardWorkerNodeConfig of(String host, int grpcPort, int metricsPort, MembershipConfig membership) {
    return new ShardWorkerNodeConfig("shard-worker-" + java.util.UUID.randomUUID(), host, grpcPort, metricsPort,
        membership, ShardWorkerConfig.defaults(), Runtime.getRuntime().availableProcessors(),
        KernelsProvider.configuredSet(), InsecureServerCredentials.create(), Duration.ofSeconds(30));
  }

  public ShardWorkerNodeConfig withWorker(ShardWorkerConfig newWorker) {
    return new ShardWorkerNodeConfig(nodeId, host, grpcPort, metricsPort, membership, newWorker, computeThreads, kernels,
        credentials, drainTimeout);
  }

  public ShardWorkerNodeConfig withNodeId(String newNodeId) {
    return new ShardWorkerNodeConfig(newNodeId, host, grpcPort, metricsPort, membership, worker, computeThreads, kernels,
        credentials, drainTimeout);
  }

  public ShardWorkerNodeConfig withComputeThreads(int threads) {
    return new ShardWorkerNodeConfig(nodeId, host, grpcPort, metricsPort, membership, worker, threads, kernels,
        credentials, drainTimeout);
  }

  public ShardWorkerNodeConfig withKernels(KernelSet newKernels) {
    return new ShardWorkerNodeConfig(nodeId, host, grpcPort, metricsPort, membership, worker, computeThreads, newKernels,
        credentials, drainTimeout);
  }

  /**
   * This node on the cluster's mutual TLS: its server takes only callers with a certificate the
   * cluster CA signed (the coordinator, peers), and its peer streams go only to such servers.
   * Sets the worker config's peer channels, so comes after {@link #withWorker}.
   */
  public ShardWorkerNodeConfig withClusterTls(ReloadingTls tls) {
    ShardWorkerConfig secured = worker.withCollective(
        worker.collective().withChannel(worker.collective().channel().withCredentials(tls.channelCredentials())));
    return new ShardWorkerNodeConfig(nodeId, host, grpcPort, metricsPort, membership, secured, computeThreads, kernels,
        tls.serverCredentials(), drainTimeout);
  }

  public ShardWorkerNodeConfig withDrainTimeout(Duration newDrainTimeout) {
    return new ShardWorkerNodeConfig(nodeId, host, grpcPort, metricsPort, membership, worker, computeThreads, kernels,
        credentials, newDrainTimeout);
  }

  private static void requirePort(String name, int port) {
    if (port < 0 || port > 65535) {
      throw new IllegalArgumentException(name + " must be in 0..65535. Given: " + port);
    }
  }
}
