package dev.owlery.cluster.tls;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import dev.owlery.cluster.rpc.GrpcChannelConfig;
import dev.owlery.cluster.rpc.GrpcChannels;
import dev.owlery.cluster.rpc.GrpcServer;
import dev.owlery.cluster.rpc.GrpcServerConfig;
import dev.owlery.cluster.testing.GrpcCleanup;
import io.grpc.ChannelCredentials;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.TlsChannelCredentials;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * TLS and mutual TLS on real Netty servers on 127.0.0.1:0, with certificates {@link
 * DevCertificates} writes into temporary folders.
 */
class ReloadingTlsTest {

  private static final Duration VALIDITY = Duration.ofDays(1);

  @RegisterExtension final GrpcCleanup cleanup = new GrpcCleanup();

  @TempDir Path cluster;
  @TempDir Path foreign;

  private GrpcServer server(ReloadingTls tls) {
    GrpcServerConfig loopback = GrpcServerConfig.loopback();
    // A short grace: a connection whose handshake the client refused would hold the default 10 s.
    GrpcServerConfig config = new GrpcServerConfig(loopback.host(), 0, loopback.maxInboundMessageBytes(),
        loopback.keepAliveTime(), loopback.keepAliveTimeout(), loopback.permitKeepAliveTime(), Duration.ofMillis(200),
        tls.serverCredentials());
    return cleanup.register(GrpcServer.netty(config, new SimpleMeterRegistry(), List.of())).start();
  }

  private ReloadingTls node(Path dir, String name) {
    return cleanup.register(ReloadingTls.open(DevCertificates.certificate(dir, name), DevCertificates.key(dir, name),
        DevCertificates.caCertificate(dir)));
  }

  /** The health check's answer over a new channel with {@code credentials}; its failure as an exception. */
  private ServingStatus health(GrpcServer server, ChannelCredentials credentials) {
    ManagedChannel channel = cleanup.register(GrpcChannels.forTarget("127.0.0.1:" + server.port(),
        GrpcChannelConfig.defaults().withCredentials(credentials)));
    return HealthGrpc.newBlockingStub(channel).withDeadlineAfter(5, TimeUnit.SECONDS)
        .check(HealthCheckRequest.getDefaultInstance()).getStatus();
  }

  private static ChannelCredentials trusting(Path ca) throws IOException {
    return TlsChannelCredentials.newBuilder().trustManager(ca.toFile()).build();
  }

  @Test
  void nodesOfOneClusterCaTalkOverMutualTls() {
    DevCertificates.write(cluster, List.of("shard-0", "shard-1"), List.of(), VALIDITY);
    GrpcServer server = server(node(cluster, "shard-0"));

    assertThat(health(server, node(cluster, "shard-1").channelCredentials())).isEqualTo(ServingStatus.SERVING);
  }

  @Test
  void aNodeWithAForeignCaCertificateIsRefused() {
    DevCertificates.write(cluster, List.of("shard-0"), List.of(), VALIDITY);
    DevCertificates.write(foreign, List.of("shard-1"), List.of(), VALIDITY);
    GrpcServer server = server(node(cluster, "shard-0"));
    // A channel that trusts the cluster CA (so it accepts the server) but presents the foreign certificate.
    ReloadingTls intruder = cleanup.register(ReloadingTls.open(DevCertificates.certificate(foreign, "shard-1"),
        DevCertificates.key(foreign, "shard-1"), DevCertificates.caCertificate(cluster)));

    assertThatThrownBy(() -> health(server, intruder.channelCredentials()))
        .isInstanceOfSatisfying(StatusRuntimeException.class,
            e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.UNAVAILABLE));
  }

  @Test
  void aNodeRefusesAServerWhoseCertificateAnotherCaSigned() {
    DevCertificates.write(cluster, List.of("shard-1"), List.of(), VALIDITY);
    DevCertificates.write(foreign, List.of("shard-0"), List.of(), VALIDITY);
    GrpcServer impostor = server(node(foreign, "shard-0"));

    assertThatThrownBy(() -> health(impostor, node(cluster, "shard-1").channelCredentials()))
        .isInstanceOfSatisfying(StatusRuntimeException.class,
            e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.UNAVAILABLE));
  }

  @Test
  void aPlaintextClientIsRefusedByATlsServer() throws IOException {
    DevCertificates.write(cluster, List.of("coordinator"), List.of(), VALIDITY);
    GrpcServer server = server(cleanup.register(ReloadingTls.open(DevCertificates.certificate(cluster, "coordinator"),
        DevCertificates.key(cluster, "coordinator"), null)));

    assertThat(health(server, trusting(DevCertificates.caCertificate(cluster)))).isEqualTo(ServingStatus.SERVING);
    assertThatThrownBy(() -> health(server, InsecureChannelCredentials.create()))
        .isInstanceOfSatisfying(StatusRuntimeException.class,
            e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.UNAVAILABLE));
  }

  @Test
  void aCertificateRotatedOnDiskIsServedOnTheNextConnection() throws IOException {
    DevCertificates.write(cluster, List.of("coordinator"), List.of(), VALIDITY);
    DevCertificates.write(foreign, List.of("coordinator"), List.of(), VALIDITY);
    Path certificate = DevCertificates.certificate(cluster, "coordinator");
    Path key = DevCertificates.key(cluster, "coordinator");
    GrpcServer server = server(cleanup.register(ReloadingTls.open(certificate, key, null)));
    ChannelCredentials trustingOld = trusting(DevCertificates.caCertificate(cluster));
    ChannelCredentials trustingNew = trusting(DevCertificates.caCertificate(foreign));
    assertThat(health(server, trustingOld)).isEqualTo(ServingStatus.SERVING);
    assertThatThrownBy(() -> health(server, trustingNew)).isInstanceOf(StatusRuntimeException.class);

    // The rotation: a certificate from the other CA replaces the served one, key first.
    Files.copy(DevCertificates.key(foreign, "coordinator"), key, StandardCopyOption.REPLACE_EXISTING);
    Files.copy(DevCertificates.certificate(foreign, "coordinator"), certificate, StandardCopyOption.REPLACE_EXISTING);

    await().atMost(Duration.ofSeconds(10)).ignoreExceptionsInstanceOf(StatusRuntimeException.class)
        .untilAsserted(() -> assertThat(health(server, trustingNew)).isEqualTo(ServingStatus.SERVING));
    assertThatThrownBy(() -> health(server, trustingOld)).isInstanceOf(StatusRuntimeException.class);
  }

  @Test
  void aCaRotatedOnDiskDecidesTheNextHandshake() throws IOException {
    DevCertificates.write(cluster, List.of("shard-0", "shard-1"), List.of(), VALIDITY);
    DevCertificates.write(foreign, List.of("shard-1"), List.of(), VALIDITY);
    Path ca = cluster.resolve("trusted-ca.pem");
    Files.copy(DevCertificates.caCertificate(cluster), ca);
    GrpcServer server = server(cleanup.register(ReloadingTls.open(DevCertificates.certificate(cluster, "shard-0"),
        DevCertificates.key(cluster, "shard-0"), ca)));
    // Both callers accept the server (they trust the cluster CA); they differ in the certificate they present.
    ChannelCredentials ofCluster = node(cluster, "shard-1").channelCredentials();
    ChannelCredentials ofForeign = cleanup.register(ReloadingTls.open(DevCertificates.certificate(foreign, "shard-1"),
        DevCertificates.key(foreign, "shard-1"), DevCertificates.caCertificate(cluster))).channelCredentials();
    assertThat(health(server, ofCluster)).isEqualTo(ServingStatus.SERVING);
    assertThatThrownBy(() -> health(server, ofForeign)).isInstanceOf(StatusRuntimeException.class);

    Files.copy(DevCertificates.caCertificate(foreign), ca, StandardCopyOption.REPLACE_EXISTING);

    await().atMost(Duration.ofSeconds(10)).ignoreExceptionsInstanceOf(StatusRuntimeException.class)
        .untilAsserted(() -> assertThat(health(server, ofForeign)).isEqualTo(ServingStatus.SERVING));
    assertThatThrownBy(() -> health(server, ofCluster)).isInstanceOf(StatusRuntimeException.class);
  }

  @Test
  void aMissingFileIsNamed() {
    Path missing = cluster.resolve("absent.pem");

    assertThatThrownBy(() -> ReloadingTls.open(missing, missing, null))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining(missing.toString());
  }
}
