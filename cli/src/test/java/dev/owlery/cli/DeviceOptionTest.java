package dev.owlery.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.owlery.engine.cuda.device.CudaDevices;
import dev.owlery.engine.cuda.device.DeviceProbe;
import dev.owlery.engine.testing.Fixtures;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code --device} on generate, bench and shard-worker: the CPU as before, a bad value refused, and
 * {@code cuda} answered in one line after the probe (on CI, which has no NVIDIA driver, the probe's
 * reason; with a GPU, generate and bench say that only shard workers serve from it); {@code
 * cuda-twin} is for shard workers only.
 */
class DeviceOptionTest {

  private static final String MODEL = Fixtures.stories260k().toString();

  @Test
  void cudaIsRefusedInOneLineByEachCommandBeforeItStartsAnything() {
    List<List<String>> commands = List.of(
        List.of("generate", "--model", MODEL, "--prompt-ids", "1,403", "--device", "cuda"),
        List.of("bench", "--model", MODEL, "--bandwidth-mib", "0", "--device", "cuda:0"),
        List.of("shard-worker", "--node-id", "shard-0", "--device", "cuda"));
    for (List<String> command : commands) {
      CliRun run = CliRun.of(command.toArray(String[]::new));

      assertThat(run.exitCode()).as(run.err()).isEqualTo(2);
      assertThat(run.out()).as(command.getFirst()).isEmpty();
      assertCudaRefusal(run.err().stripTrailing(), 0);
      assertThat(run.err().lines()).as(command.getFirst()).hasSize(1);
    }
  }

  @Test
  void theCudaTwinIsRefusedByGenerateAndBenchInOneLine() {
    for (String command : List.of("generate", "bench")) {
      CliRun run = command.equals("generate")
          ? CliRun.of("generate", "--model", MODEL, "--prompt-ids", "1,403", "--device", "cuda-twin")
          : CliRun.of("bench", "--bandwidth-mib", "0", "--skip-matmul", "--device", "cuda-twin");

      assertThat(run.exitCode()).as(run.err()).isEqualTo(2);
      assertThat(run.err()).isEqualTo(("owlery: error: --device cuda-twin serves from shard workers only (owlery "
          + "shard-worker --device, owlery local --devices); use --device cpu%n").formatted());
    }
  }

  @Test
  void aShardWorkerOnADeviceRefusesQuantizedWeightsInOneLine() {
    CliRun run = CliRun.of("shard-worker", "--node-id", "shard-0", "--device", "cuda-twin", "--weights", "q8_0");

    assertThat(run.exitCode()).as(run.err()).isEqualTo(2);
    assertThat(run.err()).isEqualTo("owlery: error: weights on a CUDA device are F16, BF16 or as stored; --weights "
        + "q8_0 is for the CPU%n".formatted());
  }

  @Test
  void aDeviceIndexIsProbedAsGiven() {
    CliRun run = CliRun.of("generate", "--model", MODEL, "--prompt-ids", "1,403", "--device", "cuda:3");

    assertThat(run.exitCode()).isEqualTo(2);
    assertCudaRefusal(run.err().stripTrailing(), 3);
  }

  @Test
  void anUnknownDeviceIsRefusedNamingTheForms() {
    CliRun run = CliRun.of("generate", "--model", MODEL, "--prompt-ids", "1,403", "--device", "gpu");

    assertThat(run.exitCode()).isEqualTo(2);
    assertThat(run.err()).isEqualTo(("owlery: error: Invalid value for option '--device': --device must be cpu, cuda, "
        + "cuda:N (N a CUDA device index, 0 for the first) or cuda-twin (the CUDA path on the CPU, slow, for tests). "
        + "Given: \"gpu\"%n"
        + "run 'owlery generate --help' for the options%n").formatted());
  }

  @Test
  void onTheCpuGenerationIsAsWithoutTheFlag() {
    String[] plain = {"generate", "--model", MODEL, "--prompt-ids", "1,403,407", "--template", "none",
        "--max-new-tokens", "12", "--output", "json"};
    CliRun without = CliRun.of(plain);
    CliRun cpu = CliRun.of(concat(plain, "--device", "cpu"));

    assertThat(without.exitCode()).as(without.err()).isZero();
    assertThat(cpu.exitCode()).as(cpu.err()).isZero();
    assertThat(cpu.out()).contains("\"token_ids\"").isEqualTo(without.out());
  }

  @Test
  void aUtilizationOutsideZeroToOneIsRefused() {
    CliRun run = CliRun.of("bench", "--bandwidth-mib", "0", "--skip-matmul", "--gpu-memory-utilization", "1.5");

    assertThat(run.exitCode()).isEqualTo(2);
    assertThat(run.err()).isEqualTo("owlery: error: --gpu-memory-utilization must be > 0 and <= 1 (a fraction of the "
        + "device's total memory). Given: 1.5%n".formatted());
  }

  @Test
  void aRemoteGenerationTakesNoDevice() {
    CliRun run = CliRun.of("generate", "--server", "127.0.0.1:1", "--prompt", "Hi", "--device", "cpu");

    assertThat(run.exitCode()).isEqualTo(2);
    assertThat(run.err()).isEqualTo(
        "owlery: error: --device works in-process only; a cluster's shard workers take their own --device%n".formatted());
  }

  @Test
  void theLauncherPrintsTheCudaRefusalAloneWithNoTraceOrWarning(@TempDir Path tmp) throws Exception {
    Path launcher = Path.of("..", "owlery").toAbsolutePath().normalize();
    Path out = tmp.resolve("out");
    Path err = tmp.resolve("err");
    ProcessBuilder builder = new ProcessBuilder("bash", launcher.toString(), "generate", "--model", MODEL,
        "--prompt", "Once", "--device", "cuda").redirectOutput(out.toFile()).redirectError(err.toFile());
    builder.environment().put("OWLERY_CLASSPATH", System.getProperty("java.class.path"));
    Process process = builder.start();

    assertThat(process.waitFor(60, TimeUnit.SECONDS)).as("the launcher ended").isTrue();
    assertThat(process.exitValue()).isEqualTo(2);
    assertThat(Files.readString(out)).isEmpty();
    List<String> lines = Files.readAllLines(err);
    assertThat(lines).as(String.join("\n", lines)).hasSize(1);
    assertCudaRefusal(lines.getFirst(), 0);
  }

  /**
   * The one line {@code --device cuda:index} must get here: the probe's reason where there is no
   * such device (CI: {@link CudaDevices#NO_DRIVER}), else the refusal naming the device found.
   */
  private static void assertCudaRefusal(String line, int index) {
    String prefix = "owlery: error: --device cuda:%d: ".formatted(index);
    switch (CudaDevices.probe(index)) {
      case DeviceProbe.Unavailable(String reason) -> assertThat(line).isEqualTo(prefix + reason);
      case DeviceProbe.Found(var device) -> assertThat(line).startsWith(prefix + "found cuda:" + index + " ")
          .endsWith(", but in-process generation and bench do not compute on a GPU yet; shard workers serve from it "
              + "(owlery shard-worker --device, owlery local --devices); use --device cpu");
    }
  }

  private static String[] concat(String[] head, String... tail) {
    String[] all = java.util.Arrays.copyOf(head, head.length + tail.length);
    System.arraycopy(tail, 0, all, head.length, tail.length);
    return all;
  }
}
