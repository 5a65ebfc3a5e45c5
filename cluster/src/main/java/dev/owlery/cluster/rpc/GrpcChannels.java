package dev.owlery.cluster.rpc;

import io.grpc.ManagedChannel;
import io.grpc.netty.NettyChannelBuilder;
import java.util.concurrent.TimeUnit;

/** Opens channels from one node to another with the cluster's credentials, keepalive and size limits. */
public final class GrpcChannels {

  private GrpcChannels() {}

  /**
   * A channel to {@code target} ("host:port" or a gRPC target URI) with {@code config}'s
   * credentials (plaintext or TLS). The caller owns it and shuts it down.
   */
  public static ManagedChannel forTarget(String target, GrpcChannelConfig config) {
    return NettyChannelBuilder.forTarget(target, config.credentials())
        .maxInboundMessageSize(config.maxInboundMessageBytes())
        .keepAliveTime(config.keepAliveTime().toNanos(), TimeUnit.NANOSECONDS)
        .keepAliveTimeout(config.keepAliveTimeout().toNanos(), TimeUnit.NANOSECONDS)
        // Shard and peer channels sit idle between steps; a dead peer must still be noticed.
        .keepAliveWithoutCalls(true)
        .build();
  }
}
