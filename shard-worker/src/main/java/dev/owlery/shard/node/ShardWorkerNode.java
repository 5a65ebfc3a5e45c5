package dev.owlery.shard.node;

import com.hazelcast.core.HazelcastInstanceNotActiveException;
import dev.owlery.cluster.membership.ClusterMember;
import dev.owlery.cluster.metrics.MetricsEndpoint;
import dev.owlery.cluster.metrics.NodeMetrics;
import dev.owlery.cluster.registry.NodeRecord;
import dev.owlery.cluster.registry.NodeDevice;
import dev.owlery.cluster.registry.NodeRegistry;
import dev.owlery.cluster.registry.NodeResources;
import dev.owlery.cluster.registry.NodeRole;
import dev.owlery.cluster.registry.NodeState;
import dev.owlery.cluster.rpc.GrpcServerConfig;
import dev.owlery.engine.cuda.device.CudaDevice;
import dev.owlery.engine.kernel.Kernels;
import dev.owlery.engine.kernel.KernelsProvider;
import dev.owlery.shard.worker.ShardDevice;
import dev.owlery.shard.worker.ShardWorkerConfig;
import dev.owlery.shard.worker.ShardWorkerServer;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Deque;

/**
 * A running shard worker node: its gRPC server (ShardWorker, ShardPeer, health), its /metrics
 * endpoint, its Hazelcast member and its registry record (role SHARD_WORKER, READY for placement;
 * the coordinator places it with LoadSlice). {@link #start} returns once all of them are up;
 * {@link #close()} drains: it publishes DRAINING, so that placement takes the node out of its group
 * and the coordinator readmits the group's sequences elsewhere (on a standby, another group, or
 * this group re-formed), waits for that up to the drain timeout, then deregisters and stops
 * everything in bounded time (a slice still in use leaves its group first, so its peers fail over
 * instead of waiting).
 */
public final class ShardWorkerNode implements AutoCloseable {

  /** The {@code role} tag of the node's meters. */
  public static final String METRICS_ROLE = "shard-worker";

  private static final long DRAIN_POLL_MS = 50;

  private final String nodeId;
  private final NodeRecord record;
  private final ShardWorkerServer server;
  private final NodeRegistry registry;
  private final Deque<AutoCloseable> parts;
  private final Duration drainTimeout;
  private final String kernels;

  private ShardWorkerNode(String nodeId, NodeRecord record, ShardWorkerServer server, NodeRegistry registry,
      Deque<AutoCloseable> parts, Duration drainTimeout, String kernels) {
    this.drainTimeout = drainTimeout;
    this.kernels = kernels;
    this.nodeId = nodeId;
    this.record = record;
    this.server = server;
    this.registry = registry;
    this.parts = parts;
  }

  /** Starts a node as {@code config} says and registers it. */
  public static ShardWorkerNode start(ShardWorkerNodeConfig config) {
    String nodeId = config.nodeId();
    Deque<AutoCloseable> parts = new ArrayDeque<>(); // closed in reverse order of start
    try {
      PrometheusMeterRegistry meters = NodeMetrics.newRegistry(nodeId, METRICS_ROLE);
      parts.push(meters::close);
      Kernels kernels = KernelsProvider.create(config.kernels(), config.computeThreads(), config.worker().weights());
      if (kernels instanceof AutoCloseable threads) {
        parts.push(threads);
      }
      ShardWorkerServer server = ShardWorkerServer.netty(
          GrpcServerConfig.of(config.host(), config.grpcPort()).withCredentials(config.credentials()),
          config.worker(), kernels, meters).start();
      parts.push(server);
      MetricsEndpoint metrics = MetricsEndpoint.start(config.host(), config.metricsPort(), meters);
      parts.push(metrics);
      ClusterMember member = ClusterMember.start(config.membership());
      parts.push(member);
      NodeRegistry registry = new NodeRegistry(member);
      parts.push(registry);
      NodeResources resources = new NodeResources(config.computeThreads(), Runtime.getRuntime().maxMemory(),
          registeredDevice(config.worker()));
      NodeRecord record = new NodeRecord(nodeId, member.memberUuid(), NodeRole.SHARD_WORKER,
          config.host() + ":" + server.port(), metrics.url().toString(), resources, NodeState.READY, null);
      registry.register(record);
      return new ShardWorkerNode(nodeId, record, server, registry, parts, config.drainTimeout(), kernels.name());
    } catch (RuntimeException | Error e) {
      RuntimeException closing = closeAll(parts);
      if (closing != null) {
        e.addSuppressed(closing);
      }
      throw e;
    }
  }

  /**
   * The device the coordinator sizes this shard's KV pool from (with the memory the probe reported
   * at start, its share and the weights' form); null on the CPU, sized from the heap.
   */
  private static NodeDevice registeredDevice(ShardWorkerConfig worker) {
    ShardDevice device = worker.device();
    if (device.isCpu()) {
      return null;
    }
    CudaDevice memory = device.memory();
    return new NodeDevice(device.spec().flagValue(), memory.index(), memory.name(), memory.computeCapability(),
        memory.totalBytes(), memory.freeBytes(), device.gpuMemoryUtilization(), worker.weights().flagName());
  }

  public String nodeId() {
    return nodeId;
  }

  /** The name of the CPU kernels the decoder runs on ("vector-512", "native-vnni"). */
  public String kernels() {
    return kernels;
  }

  /** The record registered at start (state READY, not placed). */
  public NodeRecord record() {
    return record;
  }

  public ShardWorkerServer server() {
    return server;
  }

  /**
   * Drains (see the class comment), deregisters, leaves the group, stops the server, /metrics and
   * the member. Closing again does nothing.
   */
  @Override
  public void close() {
    try {
      drain();
    } catch (RuntimeException e) {
      // the registry refused (the member is going, or the record is gone): leave without the drain
    }
    try {
      registry.deregister(nodeId);
    } catch (HazelcastInstanceNotActiveException e) {
      // the member is already gone, and its record with it
    }
    RuntimeException failure = closeAll(parts);
    if (failure != null) {
      throw failure;
    }
  }

  /**
   * Publishes DRAINING and waits until placement has taken this node out of its group, no
   * coordinator is left to do so, or the drain timeout has passed.
   */
  private void drain() {
    if (registry.find(nodeId).map(NodeRecord::state).orElse(NodeState.DRAINING) == NodeState.DRAINING) {
      return; // deregistered or drained already
    }
    registry.setState(nodeId, NodeState.DRAINING);
    long deadline = System.nanoTime() + drainTimeout.toNanos();
    while (System.nanoTime() < deadline && placed() && coordinatorServing()) {
      try {
        Thread.sleep(DRAIN_POLL_MS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return;
      }
    }
  }

  private boolean placed() {
    return registry.find(nodeId).map(node -> node.assignment() != null).orElse(false);
  }

  private boolean coordinatorServing() {
    return registry.nodes(NodeRole.COORDINATOR).stream().anyMatch(node -> node.state() == NodeState.READY);
  }

  /** Closes {@code parts} in reverse order of start; returns the first failure, the others suppressed. */
  private static RuntimeException closeAll(Deque<AutoCloseable> parts) {
    RuntimeException failure = null;
    while (!parts.isEmpty()) {
      try {
        parts.pop().close();
      } catch (Exception e) {
        if (failure == null) {
          failure = new IllegalStateException("a part of the shard worker node failed to close: " + e, e);
        } else {
          failure.addSuppressed(e);
        }
      }
    }
    return failure;
  }
}
