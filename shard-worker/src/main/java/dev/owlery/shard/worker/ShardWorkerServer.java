package dev.owlery.shard.worker;

import dev.owlery.cluster.rpc.GrpcServer;
import dev.owlery.cluster.rpc.GrpcServerConfig;
import dev.owlery.engine.kernel.Kernels;
import dev.owlery.shard.collective.ShardPeerService;
import dev.owlery.shard.collective.StepTraffic;
import io.grpc.ServerBuilder;
import io.micrometer.core.instrument.MeterRegistry;
import java.time.Duration;
import java.util.List;

/**
 * A shard worker's gRPC server: ShardWorker, ShardPeer and the standard health service. Start it,
 * read its {@link #port()}, and give every rank's address to LoadSlice. {@link #close()} leaves the
 * group (peers' steps fail with UNAVAILABLE), stops the step thread and shuts the server down.
 * Peers must reach it over a serializing transport (Netty), since contributions wrap reused buffers.
 */
public final class ShardWorkerServer implements AutoCloseable {

  private final ShardPeerService peers;
  private final ShardWorkerService service;
  private final GrpcServer server;

  private ShardWorkerServer(ShardPeerService peers, ShardWorkerService service, GrpcServer server) {
    this.peers = peers;
    this.service = service;
    this.server = server;
  }

  /** A server on {@code builder} (not started); {@code shutdownGrace} bounds {@link #close()}'s wait for calls. */
  public static ShardWorkerServer create(ServerBuilder<?> builder, Duration shutdownGrace, ShardWorkerConfig config,
      Kernels kernels, MeterRegistry meters) {
    ShardPeerService peers = new ShardPeerService();
    ShardWorkerService service = new ShardWorkerService(config, kernels, meters, peers);
    return new ShardWorkerServer(peers, service, new GrpcServer(builder, shutdownGrace, meters, List.of(service, peers)));
  }

  /** A server on TCP as {@code grpc} says (address, message size, keepalive; peers' pings permitted), not started. */
  public static ShardWorkerServer netty(GrpcServerConfig grpc, ShardWorkerConfig config, Kernels kernels,
      MeterRegistry meters) {
    ShardPeerService peers = new ShardPeerService();
    ShardWorkerService service = new ShardWorkerService(config, kernels, meters, peers);
    return new ShardWorkerServer(peers, service, GrpcServer.netty(grpc, meters, List.of(service, peers)));
  }

  /** Starts listening; SERVING on the health service. */
  public ShardWorkerServer start() {
    server.start();
    return this;
  }

  /** The port listened on (the chosen one when configured with 0). */
  public int port() {
    return server.port();
  }

  public ShardWorkerService service() {
    return service;
  }

  /** Traffic of the last step run; {@link StepTraffic#NONE} before any. */
  public StepTraffic lastStep() {
    return service.lastStep();
  }

  /** Draining: health says NOT_SERVING, calls still run. */
  public void markNotServing() {
    server.markNotServing();
  }

  @Override
  public void close() {
    server.markNotServing();
    service.close();
    peers.close();
    server.close();
  }
}
