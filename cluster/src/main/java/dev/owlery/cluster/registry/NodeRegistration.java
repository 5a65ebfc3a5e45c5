package dev.owlery.cluster.registry;

import dev.owlery.cluster.membership.ClusterMember;
import dev.owlery.cluster.metrics.MetricsEndpoint;
import dev.owlery.cluster.rpc.GrpcServer;
import java.util.ArrayList;
import java.util.List;
import java.util.logging.Level;
import java.util.logging.Logger;

/** How every node role publishes itself in the registry once started, and takes itself down again. */
public final class NodeRegistration {

  private static final Logger LOG = Logger.getLogger(NodeRegistration.class.getName());

  private NodeRegistration() {}

  /**
   * Registers {@code nodeId} with its advertised gRPC and /metrics addresses, then marks it READY.
   *
   * @return the gRPC address other nodes call, "host:port"
   */
  public static String registerReady(NodeRegistry registry, ClusterMember member, String nodeId, NodeRole role,
      String advertisedHost, GrpcServer server, MetricsEndpoint metrics) {
    return registerReady(registry, member, nodeId, role, advertisedHost, server, metrics, null);
  }

  /** As the method above, for a node computing on {@code device} (null: the CPU). */
  public static String registerReady(NodeRegistry registry, ClusterMember member, String nodeId, NodeRole role,
      String advertisedHost, GrpcServer server, MetricsEndpoint metrics, NodeDevice device) {
    String grpcAddress = advertisedHost + ":" + server.port();
    String metricsUrl = "http://" + advertisedHost + ":" + metrics.port() + MetricsEndpoint.PATH;
    registry.register(NodeRecord.starting(nodeId, member.memberUuid(), role, grpcAddress, metricsUrl,
        NodeResources.ofThisProcess(device)));
    registry.setState(nodeId, NodeState.READY);
    return grpcAddress;
  }

  /**
   * Publishes DRAINING, turns health NOT_SERVING, closes the server (in-flight calls get its grace
   * period), deregisters, then closes the rest of {@code stopOrder} in order. Failures are logged;
   * every step runs.
   */
  public static void drainAndClose(NodeRegistry registry, String nodeId, GrpcServer server,
      List<AutoCloseable> stopOrder) {
    try {
      registry.setState(nodeId, NodeState.DRAINING);
    } catch (RuntimeException e) {
      LOG.log(Level.FINE, "could not publish DRAINING for " + nodeId, e);
    }
    server.markNotServing();
    List<AutoCloseable> order = new ArrayList<>();
    order.add(server);
    order.add(() -> registry.deregister(nodeId));
    for (AutoCloseable resource : stopOrder) {
      if (resource != server) {
        order.add(resource);
      }
    }
    closeAll(order, null);
  }

  /**
   * Closes each resource in order, keeping on after failures: added to {@code failure} as
   * suppressed when it is given (a failed start), else logged.
   */
  public static void closeAll(List<AutoCloseable> resources, RuntimeException failure) {
    for (AutoCloseable resource : resources) {
      try {
        resource.close();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      } catch (Exception e) {
        if (failure != null) {
          failure.addSuppressed(e);
        } else {
          LOG.log(Level.WARNING, "closing a node resource failed", e);
        }
      }
    }
  }
}
