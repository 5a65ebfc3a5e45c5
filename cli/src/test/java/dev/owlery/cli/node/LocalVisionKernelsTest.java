package dev.owlery.cli.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.owlery.cli.Owlery;
import dev.owlery.engine.onednn.testing.OneDnnTesting;
import dev.owlery.engine.testing.Fixtures;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * {@code owlery local --vision-kernels onednn-bf16}, the command as a process: its vision worker
 * names the oneDNN kernels it runs on, and a picture through the cluster moves the first token's
 * log-probabilities off those of the float32 tower (one process, vector kernels) by BF16's
 * rounding; an unknown kernel set is refused before any node starts.
 */
class LocalVisionKernelsTest {

  private static final ObjectMapper JSON = new ObjectMapper();

  @Test
  void theVisionWorkerRunsTheTowerOnOneDnnInBf16(@TempDir Path tmp) throws Exception {
    OneDnnTesting.library();
    Path model = Fixtures.tinyOwl2();
    List<String> request = List.of("--prompt", "USER: <|image|>Describe the image. ASSISTANT:", "--image",
        model.resolve("test_image.png").toString(), "--max-new-tokens", "4", "--output", "json", "--logprobs", "5",
        "--template", "none");
    JsonNode float32 = generate(tmp, concat(List.of("generate", "--model", model.toString(), "--kv-cache-dtype", "f32"),
        request));

    Path readyFile = tmp.resolve("ready.json");
    List<String> command = LocalCluster.owleryCommand(List.of("-Xmx256m"));
    command.addAll(List.of("local", "--model", model.toString(), "--shards", "1", "--vision-workers", "1",
        "--node-heap", "384m", "--ready-file", readyFile.toString(), "--vision-kernels", "onednn-bf16",
        "--coordinator-arg=--kv-cache-dtype=f32"));
    Process local = new ProcessBuilder(command).redirectErrorStream(true)
        .redirectOutput(tmp.resolve("owlery.log").toFile()).start();
    try {
      await().atMost(Duration.ofSeconds(120)).until(() -> Files.exists(readyFile) || !local.isAlive());
      assertThat(local.isAlive()).as(output(tmp)).isTrue();
      assertThat(output(tmp)).containsPattern("\\[vision-0\\] owlery vision-worker: .*, kernels onednn-bf16 "
          + "\\(oneDNN [23]\\.\\d+\\.\\d+, \\S+\\)");
      String coordinator = JSON.readTree(readyFile.toFile()).get("coordinator").asText();

      JsonNode bf16 = generate(tmp, concat(List.of("generate", "--server", coordinator), request));

      assertThat(bf16.get("token_ids")).as(output(tmp)).hasSize(4);
      // the first token's top-5 log-probabilities, same prompt and decoder: only the tower's arithmetic differs
      double moved = 0;
      for (JsonNode want : float32.get("logprobs").get(0).get("top")) {
        for (JsonNode got : bf16.get("logprobs").get(0).get("top")) {
          if (got.get("token_id").equals(want.get("token_id"))) {
            moved = Math.max(moved, Math.abs(got.get("logprob").asDouble() - want.get("logprob").asDouble()));
          }
        }
      }
      System.out.printf("tiny-owl2, first token: top-5 log-probabilities moved by up to %.4f with a BF16 tower%n",
          moved);
      // LocalClusterParityTest holds a float32 cluster to 1e-4 of one process: the BF16 tower moves them farther,
      // but by rounding, not by a misread tower (which moves them by whole units)
      assertThat(moved).isGreaterThan(1e-4).isLessThan(0.5);
    } finally {
      local.destroy();
      if (!local.waitFor(30, TimeUnit.SECONDS)) {
        local.destroyForcibly();
      }
    }
  }

  @Test
  void anUnknownKernelSetIsRefusedBeforeAnyNodeStarts() {
    StringWriter err = new StringWriter();
    CommandLine cli = Owlery.commandLine();
    cli.setErr(new PrintWriter(err, true));

    int code = cli.execute("local", "--model", Fixtures.tinyOwl2().toString(), "--vision-kernels", "amx");

    assertThat(code).isEqualTo(2);
    assertThat(err.toString()).contains("Invalid value for option '--vision-kernels': kernels must be one of vector, "
        + "onednn-bf16, got \"amx\"")
        .doesNotContain("[coordinator");
  }

  private static List<String> concat(List<String> a, List<String> b) {
    List<String> all = new ArrayList<>(a);
    all.addAll(b);
    return all;
  }

  /** {@code owlery ARGS} in this JVM, its JSON answer. */
  private static JsonNode generate(Path tmp, List<String> args) throws IOException {
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    CommandLine cli = Owlery.commandLine();
    cli.setOut(new PrintWriter(out, true));
    cli.setErr(new PrintWriter(err, true));
    int code = cli.execute(args.toArray(String[]::new));
    assertThat(code).as("owlery %s: %s%s", args, err, output(tmp)).isZero();
    return JSON.readTree(out.toString());
  }

  private static String output(Path dir) throws IOException {
    Path log = dir.resolve("owlery.log");
    return Files.exists(log) ? Files.readString(log) : "";
  }
}
