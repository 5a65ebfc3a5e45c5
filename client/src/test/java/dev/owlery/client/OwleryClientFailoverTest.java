package dev.owlery.client;

import static java.time.Duration.ofSeconds;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.owlery.cluster.rpc.GrpcServer;
import dev.owlery.cluster.rpc.GrpcServerConfig;
import dev.owlery.cluster.testing.GrpcCleanup;
import dev.owlery.proto.v1.GenerateRequest;
import io.grpc.Status;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** The SDK given several coordinators, each a fake coordinator on a real Netty server on 127.0.0.1. */
class OwleryClientFailoverTest {

  @RegisterExtension final GrpcCleanup cleanup = new GrpcCleanup();

  private final FakeOwlery first = new FakeOwlery();
  private final FakeOwlery second = new FakeOwlery();

  private String serve(FakeOwlery fake) {
    GrpcServer server = cleanup.register(GrpcServer.netty(GrpcServerConfig.loopback(), new SimpleMeterRegistry(),
        List.of(fake))).start();
    return "127.0.0.1:" + server.port();
  }

  private OwleryClient client(List<String> targets) {
    return cleanup.register(OwleryClient.builder().targets(targets).defaultDeadline(ofSeconds(10)).build());
  }

  private static GenerateRequest prompt(String text) {
    return GenerateRequest.newBuilder().setPromptText(text).build();
  }

  /** A port nothing listens on (bound, then freed). */
  private static String closedPort() throws IOException {
    try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      return "127.0.0.1:" + socket.getLocalPort();
    }
  }

  @Test
  void aCoordinatorThatIsDownIsSkippedAndTheNextOneKept() throws IOException {
    OwleryClient client = client(List.of(closedPort(), serve(second)));

    assertThat(client.generate(prompt("hello")).text()).isEqualTo("Hello world");
    assertThat(client.generateStream(prompt("hello")).next().getDelta().getText()).isEqualTo("Hel");
    assertThat(client.listModels()).hasSize(1);
    assertThat(second.generateCalls).hasValue(2);
  }

  @Test
  void aGenerateRefusedUnavailableBeforeAnyTokenIsMadeAgainOnTheNextCoordinator() throws Exception {
    first.draining = true;
    OwleryClient client = client(List.of(serve(first), serve(second)));

    assertThat(client.generateAsync(prompt("hello")).get(10, TimeUnit.SECONDS).text()).isEqualTo("Hello world");
    assertThat(client.generate(prompt("hello")).text()).isEqualTo("Hello world");
    assertThat(first.generateCalls).as("the second call went to the coordinator that answered").hasValue(1);
    assertThat(second.generateCalls).hasValue(2);
  }

  @Test
  void aStreamThatSentATokenIsNotRepeatedAndSaysWhy() throws Exception {
    OwleryClient client = client(List.of(serve(first), serve(second)));

    assertThatThrownBy(() -> client.generate(prompt("lost")))
        .isInstanceOfSatisfying(OwleryException.class, e -> assertThat(e.code()).isEqualTo(Status.Code.UNAVAILABLE))
        .hasMessageContaining("shard group group-0 was lost")
        .hasMessageContaining("after 1 token was streamed; a stream that sent tokens is not retried on another coordinator");
    assertThat(second.generateCalls).hasValue(0);
  }

  @Test
  void whenEveryCoordinatorIsDownTheFailureNamesThemAll() throws IOException {
    String a = closedPort();
    String b = closedPort();
    OwleryClient client = client(List.of(a, b));

    assertThatThrownBy(() -> client.generate(prompt("hello")))
        .isInstanceOfSatisfying(OwleryException.class, e -> assertThat(e.code()).isEqualTo(Status.Code.UNAVAILABLE))
        .hasMessageContaining("cannot connect to " + a + ", " + b);
  }

  @Test
  void anEmptyOrBlankAddressListIsRefused() {
    assertThatThrownBy(() -> OwleryClient.builder().targets(List.of()))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("at least one coordinator address");
    assertThatThrownBy(() -> OwleryClient.builder().targets(List.of("127.0.0.1:1", " ")))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("none blank");
  }
}
