package dev.owlery.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.owlery.cli.node.LocalCluster;
import dev.owlery.cli.node.LocalClusterOptions;
import dev.owlery.engine.testing.Fixtures;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The CLI against a cluster of real processes whose coordinator requires API keys (stories260k, one
 * shard worker, every key at 4 generated tokens/min): {@code generate}, {@code status} and {@code
 * models} (and {@code loadtest}) with {@code --api-key}, without one and with a wrong one; a key over its token budget; and
 * the coordinator's output never shows the key.
 */
class ApiKeyCommandsTest {

  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String KEY = "owl-cli-key-0123456789abcdef";

  private static CliRun generate(String server, int maxNewTokens, String... keyArgs) {
    List<String> args = new ArrayList<>(List.of("generate", "--server", server, "--prompt", "Once upon a time",
        "--template", "none", "--temperature", "0", "--max-new-tokens", String.valueOf(maxNewTokens), "--output", "json"));
    args.addAll(List.of(keyArgs));
    return CliRun.of(args.toArray(String[]::new));
  }

  /** {@code owlery models --server SERVER} in a JVM of its own whose environment holds OWLERY_API_KEY; its output. */
  private static String modelsInAChildJvmWithTheKeyInItsEnvironment(String server) throws Exception {
    ProcessBuilder builder = new ProcessBuilder(ProcessHandle.current().info().command().orElseThrow(), "-cp",
        System.getProperty("java.class.path"), Owlery.class.getName(), "models", "--server", server)
        .redirectErrorStream(true);
    builder.environment().put("OWLERY_API_KEY", KEY);
    Process process = builder.start();
    String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(process.waitFor(60, TimeUnit.SECONDS)).isTrue();
    assertThat(process.exitValue()).as(output).isZero();
    return output;
  }

  @Test
  void commandsSendTheKeyAndTheCoordinatorRefusesCallsWithoutOne(@TempDir Path tmp) throws Exception {
    Path keys = Files.writeString(tmp.resolve("keys.txt"), "# the CLI test's key\n\n" + KEY + "\n");
    StringWriter log = new StringWriter();
    try (LocalCluster cluster = LocalCluster.start(Fixtures.stories260k(), 1, 0, 0, new PrintWriter(log, true),
        LocalClusterOptions.DEFAULT.withJvmOptions(List.of("-Xmx512m"))
            .withCoordinatorArgs(List.of("--api-keys=" + keys, "--api-key-tokens-per-minute=4")).withApiKey(KEY))) {
      cluster.awaitReady(0, Duration.ofSeconds(240));
      String server = cluster.coordinatorAddress();

      CliRun withKey = generate(server, 2, "--api-key", KEY);
      assertThat(withKey.exitCode()).as(withKey.err()).isZero();
      JsonNode answer = JSON.readTree(withKey.out());
      assertThat(answer.get("token_ids")).as(withKey.out()).hasSize(2);

      CliRun noKey = generate(server, 2);
      assertThat(noKey.exitCode()).isEqualTo(1);
      assertThat(noKey.err()).startsWith("owlery: the server answered UNAUTHENTICATED: this coordinator requires an API "
          + "key: send the metadata 'authorization: Bearer KEY' (owlery --api-key KEY, or OWLERY_API_KEY)");
      CliRun wrongKey = generate(server, 2, "--api-key", KEY.replace('0', '1'));
      assertThat(wrongKey.err())
          .startsWith("owlery: the server answered UNAUTHENTICATED: the API key is not one this coordinator accepts");

      CliRun status = CliRun.of("status", "--server", server, "--api-key", KEY);
      assertThat(status.exitCode()).as(status.err()).isZero();
      assertThat(status.out()).contains("READY");
      assertThat(modelsInAChildJvmWithTheKeyInItsEnvironment(server)).containsPattern("(?m)^hf +llama +512 ");
      CliRun models = CliRun.of("models", "--server", server);
      assertThat(models.exitCode()).isEqualTo(1);
      assertThat(models.err()).startsWith("owlery: the server answered UNAUTHENTICATED");

      CliRun load = CliRun.of("loadtest", "--server", server, "--api-key", KEY, "--concurrency", "1", "--requests", "1",
          "--prompt-ids", "1", "--max-new-tokens", "1", "--warmup", "0", "--no-server-metrics", "--output", "json");
      assertThat(load.exitCode()).as(load.err()).isZero();
      JsonNode level = JSON.readTree(load.out()).get("levels").get(0);
      assertThat(level.get("num_errors").asInt()).as(load.out()).isZero();
      assertThat(level.get("num_requests").asInt()).isEqualTo(1);

      // 3 of the key's 4 tokens/min are spent: this call is admitted, and its 8 tokens put it in debt.
      CliRun spending = generate(server, 8, "--api-key", KEY);
      assertThat(spending.exitCode()).as(spending.err()).isZero();
      assertThat(JSON.readTree(spending.out()).get("token_ids").size()).isGreaterThan(2);
      CliRun over = generate(server, 2, "--api-key", KEY);
      assertThat(over.exitCode()).isEqualTo(1);
      assertThat(over.err()).matches("(?s)owlery: the server answered RESOURCE_EXHAUSTED: key k-[0-9a-f]{8}: over 4 "
          + "generated tokens/min; retry in [0-9]+\\.[0-9] s\\R");
    }
    assertThat(log.toString()).as("the coordinator's output").contains("coordinator").doesNotContain(KEY);
  }
}
