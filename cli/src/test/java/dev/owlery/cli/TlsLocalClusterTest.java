package dev.owlery.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.owlery.cli.node.LocalCluster;
import dev.owlery.cli.node.LocalClusterOptions;
import dev.owlery.client.OwleryClient;
import dev.owlery.client.OwleryException;
import dev.owlery.engine.testing.Fixtures;
import io.grpc.Status;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code owlery certs}, then a TLS-only local cluster of real processes on its CA (tiny-owl2, a
 * vision worker and two shard workers, so every internal link runs mutual TLS): the CLI and the
 * SDK are answered over TLS; plaintext clients and clients that trust another CA are refused.
 */
class TlsLocalClusterTest {

  private static final ObjectMapper JSON = new ObjectMapper();

  @Test
  void aTlsOnlyClusterAnswersOverTlsAndRefusesPlaintext(@TempDir Path tmp) throws Exception {
    Path certs = tmp.resolve("certs");
    CliRun written = CliRun.of("certs", "--out", certs.toString(), "--nodes", "client");
    assertThat(written.exitCode()).as(written.err()).isZero();
    CliRun otherCa = CliRun.of("certs", "--out", tmp.resolve("other").toString(), "--nodes", "client");
    assertThat(otherCa.exitCode()).as(otherCa.err()).isZero();
    Path ca = certs.resolve("ca.pem");
    Path model = Fixtures.tinyOwl2();
    StringWriter log = new StringWriter();
    try (LocalCluster cluster = LocalCluster.start(model, 2, 1, 0, new PrintWriter(log, true),
        LocalClusterOptions.DEFAULT.withJvmOptions(List.of("-Xmx512m")).withCerts(certs))) {
      Path readyFile = tmp.resolve("ready.json");
      cluster.writeReadyFile(readyFile, cluster.awaitReady(1, Duration.ofSeconds(240)));
      assertThat(JSON.readTree(readyFile.toFile()).get("tls_ca").asText()).isEqualTo(ca.toString());
      String server = cluster.coordinatorAddress();

      // A picture goes through the vision worker, the step through both shards' peer streams.
      CliRun generate = CliRun.of("generate", "--server", server, "--tls-ca", ca.toString(), "--prompt",
          "USER: <|image|>Describe the image. ASSISTANT:", "--image", model.resolve("test_image.png").toString(),
          "--image-aspect-ratio", "resize", "--template", "none", "--max-new-tokens", "3", "--output", "json");
      assertThat(generate.exitCode()).as(generate.err() + log).isZero();
      JsonNode answer = JSON.readTree(generate.out());
      assertThat(answer.get("token_ids").size()).as(generate.out()).isBetween(1, 3);
      CliRun status = CliRun.of("status", "--server", server, "--tls-ca", ca.toString());
      assertThat(status.exitCode()).as(status.err()).isZero();
      assertThat(status.out()).contains("READY");
      try (OwleryClient sdk = OwleryClient.builder().target(server).trustedCertificates(ca).build()) {
        assertThat(sdk.listModels()).hasSize(1);
      }
      CliRun load = CliRun.of("loadtest", "--server", server, "--tls-ca", ca.toString(), "--concurrency", "1",
          "--requests", "1", "--prompt-ids", "1", "--max-new-tokens", "1", "--warmup", "0", "--no-server-metrics",
          "--output", "json");
      assertThat(load.exitCode()).as(load.err()).isZero();
      assertThat(JSON.readTree(load.out()).get("levels").get(0).get("num_errors").asInt()).as(load.out()).isZero();

      CliRun plaintext = CliRun.of("models", "--server", server);
      assertThat(plaintext.exitCode()).as(plaintext.out()).isEqualTo(1);
      assertThat(plaintext.err()).contains("UNAVAILABLE");
      try (OwleryClient sdk = OwleryClient.builder().target(server).defaultDeadline(Duration.ofSeconds(10)).build()) {
        assertThatThrownBy(sdk::listModels).isInstanceOfSatisfying(OwleryException.class,
            e -> assertThat(e.code()).isEqualTo(Status.Code.UNAVAILABLE));
      }
      CliRun wrongCa = CliRun.of("models", "--server", server, "--tls-ca", tmp.resolve("other/ca.pem").toString());
      assertThat(wrongCa.exitCode()).isEqualTo(1);
    }
  }

  @Test
  void aCertificatesFolderWithoutTlsIsRefusedInOneLine(@TempDir Path tmp) {
    CliRun local = CliRun.of("local", "--model", Fixtures.stories260k().toString(), "--certs", tmp.toString());

    assertThat(local.exitCode()).isNotZero();
    assertThat(local.err()).contains("--certs is the folder of --tls's certificates: give --tls too").hasLineCount(1);
  }
}
