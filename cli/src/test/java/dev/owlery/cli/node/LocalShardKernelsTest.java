package dev.owlery.cli.node;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.owlery.cli.CliRun;
import dev.owlery.engine.testing.Fixtures;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code owlery local --weights q8_0}, the command as a process, its shard kernels left at
 * {@code auto}: on this machine (a C compiler, AVX2) its shard worker names the native kernels it
 * decodes on (with BF16 prompts where the CPU has AVX512_BF16), and decodes as one process on
 * those kernels does ({@code -Dowlery.kernels=native}), while the vector kernels' decode (float32
 * activations) gives other log-probabilities; an unknown set is refused before any node starts.
 */
class LocalShardKernelsTest {

  private static final ObjectMapper JSON = new ObjectMapper();
  /** LocalClusterParityTest's bound between a float32 cluster and one process on the same kernels. */
  private static final double PARITY = 1e-4;

  @Test
  void theShardWorkerDecodesOnTheNativeKernelsByDefault(@TempDir Path tmp) throws Exception {
    Path model = Fixtures.stories260k();
    List<String> request = List.of("--prompt", "Once upon a time", "--max-new-tokens", "6",
        "--output", "json", "--logprobs", "5", "--template", "none");
    List<String> inProcess = concat(List.of("generate", "--model", model.toString(), "--weights", "q8_0",
        "--kv-cache-dtype", "f32"), request);
    JsonNode nativeProcess = generateInProcess(tmp, List.of("-Dowlery.kernels=native", "-Xmx512m"), inProcess);
    JsonNode vectorProcess = generateInProcess(tmp, List.of("-Dowlery.kernels=vector", "-Xmx512m"), inProcess);

    try (LocalProcess local = LocalProcess.start(tmp, "--model", model.toString(), "--shards", "1",
        "--vision-workers", "0", "--node-heap", "256m", "--weights", "q8_0", "--coordinator-arg=--kv-cache-dtype=f32")) {
      // auto with Q8_0 weights: BF16 prompts where the CPU has AVX512_BF16 (this prompt's 5 tokens
      // are too few for them: its attention is float32 either way)
      assertThat(local.output()).containsPattern("\\[shard-0\\] owlery shard-worker: .* serving on .*, kernels native-(vnni|avx2)"
          + (cpuHasAvx512Bf16() ? "-bf16" : "") + "(?![-\\w])");
      JsonNode cluster = generate(concat(List.of("generate", "--server", local.coordinator()), request));

      assertThat(cluster.get("token_ids")).as(local.output()).isEqualTo(nativeProcess.get("token_ids")).hasSize(6);
      // decode steps: the same arithmetic as one native process (measured: identical to the last digit)
      for (int step = 1; step < 6; step++) {
        assertThat(moved(cluster, nativeProcess, step)).as("step %d against one native process", step)
            .isLessThan(PARITY);
      }
      // the first token: one process takes the prompt's logits from a product over all its rows (AMX
      // where the CPU has it, else the vector kernels), the shard from the last row's alone (a one-token
      // product, VNNI): the same int8 sums, scaled and added in another order. Measured with AMX: below
      // 1e-5; before the AMX kernel (the process's prompt product on the vector kernels): 0.026
      double first = moved(cluster, nativeProcess, 0);
      System.out.printf("stories260K Q8_0: the first token's top-5 log-probabilities %.5f from one process's%n", first);
      assertThat(first).as("first token against one native process").isLessThan(0.5);
      double later = 0;
      for (int step = 1; step < 6 && vectorProcess.get("token_ids").get(step - 1)
          .equals(cluster.get("token_ids").get(step - 1)); step++) {
        later = Math.max(later, moved(cluster, vectorProcess, step));
      }
      System.out.printf("stories260K Q8_0: decode's top-5 log-probabilities moved by up to %.4f with int8 activations%n",
          later);
      assertThat(later).as("decode's log-probabilities against the vector kernels'").isGreaterThan(PARITY).isLessThan(0.5);
    }
  }

  /** Whether /proc/cpuinfo reports AVX512_BF16 with the AVX-512 parts the native BF16 kernels need. */
  private static boolean cpuHasAvx512Bf16() throws java.io.IOException {
    List<String> flags = java.nio.file.Files.readAllLines(Path.of("/proc/cpuinfo")).stream()
        .filter(line -> line.startsWith("flags")).findFirst()
        .map(line -> List.of(line.substring(line.indexOf(':') + 1).strip().split("\\s+"))).orElse(List.of());
    return flags.containsAll(List.of("avx512_bf16", "avx512bw", "avx512vl"));
  }

  @Test
  void anUnknownShardKernelSetIsRefusedBeforeAnyNodeStarts() {
    CliRun run = CliRun.of("local", "--model", Fixtures.stories260k().toString(), "--shard-kernels", "scalar");

    assertThat(run.exitCode()).isEqualTo(2);
    assertThat(run.err())
        .contains("Invalid value for option '--shard-kernels': --kernels must be auto, vector, native or native-bf16, got \"scalar\"")
        .doesNotContain("[coordinator");
  }

  /** The largest |difference| between the two answers' top-5 log-probabilities at {@code step}, token by token. */
  private static double moved(JsonNode a, JsonNode b, int step) {
    double moved = 0;
    int matched = 0;
    for (JsonNode want : b.get("logprobs").get(step).get("top")) {
      for (JsonNode got : a.get("logprobs").get(step).get("top")) {
        if (got.get("token_id").equals(want.get("token_id"))) {
          moved = Math.max(moved, Math.abs(got.get("logprob").asDouble() - want.get("logprob").asDouble()));
          matched++;
        }
      }
    }
    assertThat(matched).as("top-5 tokens in common at step %d", step).isGreaterThanOrEqualTo(3);
    return moved;
  }

  private static List<String> concat(List<String> a, List<String> b) {
    List<String> all = new ArrayList<>(a);
    all.addAll(b);
    return all;
  }

  /** {@code owlery ARGS} in a JVM of its own with {@code jvmOptions}, its JSON answer. */
  private static JsonNode generateInProcess(Path tmp, List<String> jvmOptions, List<String> args) throws Exception {
    List<String> command = LocalCluster.owleryCommand(jvmOptions);
    command.addAll(args);
    Path err = Files.createTempFile(tmp, "generate", ".err");
    Process process = new ProcessBuilder(command).redirectError(err.toFile()).start();
    String out = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(process.waitFor(120, TimeUnit.SECONDS)).isTrue();
    assertThat(process.exitValue()).as("%s: %s", command, Files.readString(err)).isZero();
    return JSON.readTree(out);
  }

  /** {@code owlery ARGS} in this JVM, its JSON answer. */
  private static JsonNode generate(List<String> args) throws IOException {
    CliRun run = CliRun.of(args.toArray(String[]::new));
    assertThat(run.exitCode()).as("owlery %s: %s", args, run.err()).isZero();
    return JSON.readTree(run.out());
  }
}
