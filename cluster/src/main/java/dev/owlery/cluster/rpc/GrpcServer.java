package dev.owlery.cluster.rpc;

import io.grpc.BindableService;
import io.grpc.Server;
import io.grpc.ServerBuilder;
import io.grpc.ServerServiceDefinition;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.netty.NettyServerBuilder;
import io.grpc.protobuf.services.HealthStatusManager;
import io.micrometer.core.instrument.MeterRegistry;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A node's gRPC server: its services plus the standard health service, behind one {@link
 * ExceptionStatusInterceptor}. {@link #start()} reports SERVING for the server ("") and each
 * service; {@link #markNotServing()} drains; {@link #close()} shuts down within the grace period,
 * then forcibly. Takes a {@link ServerBuilder} so tests can pick the transport (in-process or
 * Netty); {@link #netty} builds the production one.
 */
public final class GrpcServer implements AutoCloseable {

  private final Server server;
  private final HealthStatusManager health = new HealthStatusManager();
  private final List<String> serviceNames;
  private final Duration shutdownGrace;

  /**
   * Prepares a server on {@code builder} (not yet started).
   *
   * @param shutdownGrace how long {@link #close()} lets in-flight calls finish
   * @param meters where the interceptor counts mapped exceptions
   */
  public GrpcServer(
      ServerBuilder<?> builder, Duration shutdownGrace, MeterRegistry meters, List<BindableService> services) {
    this.shutdownGrace = shutdownGrace;
    List<ServerServiceDefinition> definitions = services.stream().map(BindableService::bindService).toList();
    this.serviceNames = definitions.stream().map(definition -> definition.getServiceDescriptor().getName()).toList();
    builder.intercept(new ExceptionStatusInterceptor(meters));
    builder.addService(health.getHealthService());
    definitions.forEach(builder::addService);
    this.server = builder.build();
    setStatus(ServingStatus.NOT_SERVING);
  }

  /** A server listening on TCP with {@code config}'s address, credentials, limits and keepalive. */
  public static GrpcServer netty(GrpcServerConfig config, MeterRegistry meters, List<BindableService> services) {
    NettyServerBuilder builder =
        NettyServerBuilder.forAddress(new InetSocketAddress(config.host(), config.port()), config.credentials())
            .maxInboundMessageSize(config.maxInboundMessageBytes())
            .keepAliveTime(config.keepAliveTime().toNanos(), TimeUnit.NANOSECONDS)
            .keepAliveTimeout(config.keepAliveTimeout().toNanos(), TimeUnit.NANOSECONDS)
            .permitKeepAliveTime(config.permitKeepAliveTime().toNanos(), TimeUnit.NANOSECONDS)
            // GrpcChannels keeps idle channels alive too; don't punish their pings.
            .permitKeepAliveWithoutCalls(true);
    return new GrpcServer(builder, config.shutdownGrace(), meters, services);
  }

  /**
   * Starts listening and reports SERVING.
   *
   * @throws UncheckedIOException when the address cannot be bound
   */
  public GrpcServer start() {
    try {
      server.start();
    } catch (IOException e) {
      throw new UncheckedIOException("gRPC server could not bind its address: " + e.getMessage(), e);
    }
    markServing();
    return this;
  }

  /** The port listened on (the chosen one when configured with 0); -1 for non-TCP transports. */
  public int port() {
    return server.getPort();
  }

  /** Reports SERVING for the server and every service. */
  public void markServing() {
    setStatus(ServingStatus.SERVING);
  }

  /** Reports NOT_SERVING, so callers stop sending new work; in-flight calls continue. */
  public void markNotServing() {
    setStatus(ServingStatus.NOT_SERVING);
  }

  /** Names of the services registered (health excluded), e.g. "owlery.v1.Owlery". */
  public List<String> serviceNames() {
    return serviceNames;
  }

  /**
   * Reports NOT_SERVING for good, stops accepting calls, waits up to the grace period for
   * in-flight ones, then cancels what is left (their clients see CANCELLED). Services whose
   * callers should retry elsewhere fail their in-flight calls with UNAVAILABLE before this, while
   * draining after {@link #markNotServing()}.
   */
  @Override
  public void close() {
    health.enterTerminalState();
    server.shutdown();
    try {
      if (!server.awaitTermination(shutdownGrace.toNanos(), TimeUnit.NANOSECONDS)) {
        server.shutdownNow();
        server.awaitTermination(5, TimeUnit.SECONDS);
      }
    } catch (InterruptedException e) {
      server.shutdownNow();
      Thread.currentThread().interrupt();
    }
  }

  private void setStatus(ServingStatus status) {
    health.setStatus(HealthStatusManager.SERVICE_NAME_ALL_SERVICES, status);
    for (String name : serviceNames) {
      health.setStatus(name, status);
    }
  }
}
