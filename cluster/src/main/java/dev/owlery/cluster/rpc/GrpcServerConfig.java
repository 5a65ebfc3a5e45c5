package dev.owlery.cluster.rpc;

import io.grpc.InsecureServerCredentials;
import io.grpc.ServerCredentials;
import java.time.Duration;

/**
 * How a node's gRPC server listens.
 *
 * @param host the interface to bind, e.g. "127.0.0.1" or "0.0.0.0"
 * @param port 0..65535; 0 picks a free port (read it back with {@link GrpcServer#port()})
 * @param maxInboundMessageBytes largest message accepted; a 2,048-token prefill of 16 KiB rows
 *     is 32 MiB, past gRPC's 4 MiB default
 * @param keepAliveTime server pings an idle connection this often
 * @param keepAliveTimeout and drops it when a ping is not answered within this
 * @param permitKeepAliveTime most frequent client pings allowed; must not exceed the clients'
 *     {@link GrpcChannelConfig#keepAliveTime()}, or the server closes their connections
 * @param shutdownGrace how long {@link GrpcServer#close()} lets in-flight calls finish
 * @param credentials plaintext ({@link InsecureServerCredentials}) or TLS, e.g. from {@link
 *     dev.owlery.cluster.tls.ReloadingTls#serverCredentials()}
 */
public record GrpcServerConfig(
    String host,
    int port,
    int maxInboundMessageBytes,
    Duration keepAliveTime,
    Duration keepAliveTimeout,
    Duration permitKeepAliveTime,
    Duration shutdownGrace,
    ServerCredentials credentials) {

  /** Default message size limit: 64 MiB, twice a 2,048-token prefill. */
  public static final int DEFAULT_MAX_INBOUND_MESSAGE_BYTES = 64 << 20;

  public GrpcServerConfig {
    if (host == null || host.isBlank()) {
      throw new IllegalArgumentException("host must not be blank. Given: '" + host + "'");
    }
    if (port < 0 || port > 65535) {
      throw new IllegalArgumentException("port must be in 0..65535. Given: " + port);
    }
    if (maxInboundMessageBytes < 1) {
      throw new IllegalArgumentException("maxInboundMessageBytes must be >= 1. Given: " + maxInboundMessageBytes);
    }
    GrpcChannelConfig.requirePositive("keepAliveTime", keepAliveTime);
    GrpcChannelConfig.requirePositive("keepAliveTimeout", keepAliveTimeout);
    GrpcChannelConfig.requirePositive("permitKeepAliveTime", permitKeepAliveTime);
    GrpcChannelConfig.requirePositive("shutdownGrace", shutdownGrace);
    if (credentials == null) {
      throw new IllegalArgumentException("credentials must be set (InsecureServerCredentials for plaintext)");
    }
  }

  /** A plaintext server on {@code host:port} with the defaults: 64 MiB messages, 10 s keepalive, 10 s grace. */
  public static GrpcServerConfig of(String host, int port) {
    return new GrpcServerConfig(
        host,
        port,
        DEFAULT_MAX_INBOUND_MESSAGE_BYTES,
        Duration.ofSeconds(10),
        Duration.ofSeconds(5),
        Duration.ofSeconds(5),
        Duration.ofSeconds(10),
        InsecureServerCredentials.create());
  }

  /** This server with {@code newCredentials} (TLS, or plaintext). */
  public GrpcServerConfig withCredentials(ServerCredentials newCredentials) {
    return new GrpcServerConfig(host, port, maxInboundMessageBytes, keepAliveTime, keepAliveTimeout,
        permitKeepAliveTime, shutdownGrace, newCredentials);
  }

  /** The same server, letting in-flight calls finish for up to {@code grace} when it closes. */
  public GrpcServerConfig withShutdownGrace(Duration grace) {
    return new GrpcServerConfig(host, port, maxInboundMessageBytes, keepAliveTime, keepAliveTimeout,
        permitKeepAliveTime, grace, credentials);
  }

  /** A server on a free loopback port with the defaults, for tests and single-machine clusters. */
  public static GrpcServerConfig loopback() {
    return of("127.0.0.1", 0);
  }
}
