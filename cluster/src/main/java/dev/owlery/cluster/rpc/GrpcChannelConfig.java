package dev.owlery.cluster.rpc;

import io.grpc.ChannelCredentials;
import io.grpc.InsecureChannelCredentials;
import java.time.Duration;

/**
 * How a node's channels to other nodes behave.
 *
 * @param maxInboundMessageBytes largest response accepted
 * @param keepAliveTime ping the server this often, also while no call is active; must be at
 *     least the server's {@link GrpcServerConfig#permitKeepAliveTime()}
 * @param keepAliveTimeout the connection is declared dead when a ping is not answered within this
 * @param credentials plaintext ({@link InsecureChannelCredentials}) or TLS, e.g. the cluster's
 *     mutual TLS from {@link dev.owlery.cluster.tls.ReloadingTls#channelCredentials()}
 */
public record GrpcChannelConfig(
    int maxInboundMessageBytes, Duration keepAliveTime, Duration keepAliveTimeout, ChannelCredentials credentials) {

  public GrpcChannelConfig {
    if (maxInboundMessageBytes < 1) {
      throw new IllegalArgumentException("maxInboundMessageBytes must be >= 1. Given: " + maxInboundMessageBytes);
    }
    requirePositive("keepAliveTime", keepAliveTime);
    requirePositive("keepAliveTimeout", keepAliveTimeout);
    if (credentials == null) {
      throw new IllegalArgumentException("credentials must be set (InsecureChannelCredentials for plaintext)");
    }
  }

  /** Plaintext, 64 MiB messages, ping every 10 s, dead after 5 s without an answer. */
  public static GrpcChannelConfig defaults() {
    return new GrpcChannelConfig(GrpcServerConfig.DEFAULT_MAX_INBOUND_MESSAGE_BYTES, Duration.ofSeconds(10),
        Duration.ofSeconds(5), InsecureChannelCredentials.create());
  }

  /** These channels with {@code newCredentials} (TLS, or plaintext). */
  public GrpcChannelConfig withCredentials(ChannelCredentials newCredentials) {
    return new GrpcChannelConfig(maxInboundMessageBytes, keepAliveTime, keepAliveTimeout, newCredentials);
  }

  static void requirePositive(String name, Duration value) {
    if (value == null || value.isNegative() || value.isZero()) {
      throw new IllegalArgumentException(name + " must be a positive duration. Given: " + value);
    }
  }
}
