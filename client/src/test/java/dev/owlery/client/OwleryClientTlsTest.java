package dev.owlery.client;

import static java.time.Duration.ofSeconds;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.owlery.cluster.rpc.GrpcServer;
import dev.owlery.cluster.rpc.GrpcServerConfig;
import dev.owlery.cluster.testing.GrpcCleanup;
import dev.owlery.cluster.tls.DevCertificates;
import dev.owlery.cluster.tls.ReloadingTls;
import dev.owlery.proto.v1.GenerateRequest;
import io.grpc.Status;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/** The SDK against a fake coordinator on a real Netty server serving TLS on 127.0.0.1:0. */
class OwleryClientTlsTest {

  @RegisterExtension final GrpcCleanup cleanup = new GrpcCleanup();

  @TempDir Path certs;
  @TempDir Path otherCerts;

  @BeforeEach
  void writeCertificates() {
    DevCertificates.write(certs, List.of("coordinator", "client"), List.of(), Duration.ofDays(1));
    DevCertificates.write(otherCerts, List.of("client"), List.of(), Duration.ofDays(1));
  }

  /** The fake coordinator serving TLS with its certificate, asking for client certificates when {@code clientCa} is set. */
  private String serve(Path clientCa) {
    ReloadingTls tls = cleanup.register(ReloadingTls.open(DevCertificates.certificate(certs, "coordinator"),
        DevCertificates.key(certs, "coordinator"), clientCa));
    GrpcServer server = cleanup.register(GrpcServer.netty(GrpcServerConfig.loopback()
        .withCredentials(tls.serverCredentials()), new SimpleMeterRegistry(), List.of(new FakeOwlery()))).start();
    return "127.0.0.1:" + server.port();
  }

  private OwleryClient client(OwleryClient.Builder builder, String target) {
    return cleanup.register(builder.target(target).defaultDeadline(ofSeconds(10)).build());
  }

  private static GenerateRequest hello() {
    return GenerateRequest.newBuilder().setPromptText("hello").build();
  }

  @Test
  void aClientTrustingTheCaGeneratesOverTls() {
    String target = serve(null);
    OwleryClient client = client(OwleryClient.builder().trustedCertificates(DevCertificates.caCertificate(certs)), target);

    assertThat(client.generate(hello()).text()).isEqualTo("Hello world");
  }

  @Test
  void aPlaintextClientIsRefused() {
    String target = serve(null);
    OwleryClient plaintext = client(OwleryClient.builder(), target);

    assertThatThrownBy(() -> plaintext.generate(hello())).isInstanceOfSatisfying(OwleryException.class,
        e -> assertThat(e.code()).isEqualTo(Status.Code.UNAVAILABLE));
  }

  @Test
  void aClientRefusesACoordinatorWhoseCertificateItsCaDidNotSign() {
    String target = serve(null);
    OwleryClient client = client(OwleryClient.builder().trustedCertificates(DevCertificates.caCertificate(otherCerts)),
        target);

    assertThatThrownBy(() -> client.generate(hello())).isInstanceOfSatisfying(OwleryException.class,
        e -> assertThat(e.code()).isEqualTo(Status.Code.UNAVAILABLE));
  }

  @Test
  void aCoordinatorAskingForClientCertificatesTakesOnlyThoseItsCaSigned() {
    String target = serve(DevCertificates.caCertificate(certs));
    Path ca = DevCertificates.caCertificate(certs);
    OwleryClient signed = client(OwleryClient.builder().trustedCertificates(ca)
        .clientCertificate(DevCertificates.certificate(certs, "client"), DevCertificates.key(certs, "client")), target);
    OwleryClient foreign = client(OwleryClient.builder().trustedCertificates(ca)
        .clientCertificate(DevCertificates.certificate(otherCerts, "client"), DevCertificates.key(otherCerts, "client")),
        target);
    OwleryClient without = client(OwleryClient.builder().trustedCertificates(ca), target);

    assertThat(signed.generate(hello()).text()).isEqualTo("Hello world");
    assertThatThrownBy(() -> foreign.generate(hello())).isInstanceOfSatisfying(OwleryException.class,
        e -> assertThat(e.code()).isEqualTo(Status.Code.UNAVAILABLE));
    assertThatThrownBy(() -> without.generate(hello())).isInstanceOfSatisfying(OwleryException.class,
        e -> assertThat(e.code()).isEqualTo(Status.Code.UNAVAILABLE));
  }

  @Test
  void anUnreadableCaFileIsNamed() {
    Path missing = certs.resolve("absent.pem");

    assertThatThrownBy(() -> OwleryClient.builder().target("127.0.0.1:1").trustedCertificates(missing).build())
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining(missing.toString());
  }
}
