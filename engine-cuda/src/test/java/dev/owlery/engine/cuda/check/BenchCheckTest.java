package dev.owlery.engine.cuda.check;

import static org.assertj.core.api.Assertions.assertThat;

import dev.owlery.engine.config.LlamaConfig;
import dev.owlery.engine.cuda.runtime.CpuTwinDevice;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * BenchCheck as the GPU check runs it: every measurement on the CPU twins of the kernels at a tiny
 * shape (the GPU run makes the same ones at LLaMA-2-7B's), and its one-line refusal where there is
 * no device. Speeds are not asserted: only that each is a positive finite number.
 */
class BenchCheckTest {

  private static final BenchCheck.Plan TINY = new BenchCheck.Plan(
      new LlamaConfig(256, 64, 128, 2, 4, 4, 16, 512, 1e-5f, 10000f, false, 1, 2, false), 1 << 16, 3, 16, 2, 3, 32, 2);

  @Test
  void onTheCpuTwinsEveryMeasurementIsMadeAndWritten(@TempDir Path folder) throws Exception {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    int status;
    try (CpuTwinDevice twins = new CpuTwinDevice()) {
      status = BenchCheck.check(twins, TINY, "tiny", folder, new PrintStream(out, true, StandardCharsets.UTF_8));
    }
    String report = out.toString(StandardCharsets.UTF_8);
    System.out.print(report);
    assertThat(status).as(report).isEqualTo(KernelCheck.EXIT_PASSED);
    List<String> rows = Files.readAllLines(folder.resolve("bench.jsonl"));
    assertThat(rows).extracting(row -> row.substring(0, row.indexOf(",\"value\""))).containsExactly(
        "{\"measurement\":\"copy_gb_per_s\"", "{\"measurement\":\"load_seconds\"",
        "{\"measurement\":\"decode_b1_eager_tokens_per_s\"", "{\"measurement\":\"decode_b1_eager_bandwidth_fraction\"",
        "{\"measurement\":\"decode_b1_graphs_tokens_per_s\"", "{\"measurement\":\"decode_b1_graphs_bandwidth_fraction\"",
        "{\"measurement\":\"prefill_tokens_per_s\"", "{\"measurement\":\"prefill_tflops\"",
        "{\"measurement\":\"decode_b16_tokens_per_s\"", "{\"measurement\":\"decode_b64_tokens_per_s\"");
    assertThat(rows).allSatisfy(row -> assertThat(row).doesNotContain("\"value\":null", "\"value\":-", "\"value\":0,"));
    assertThat(Files.readAllLines(folder.resolve("summary.txt"))).first()
        .isEqualTo("bench on cpu kernel twins: tiny, synthetic F16 weights");
    assertThat(report).endsWith("all 10 measurements made\n");
  }

  @Test
  void theWeightBytesAndPrefillFlopsAreLlama2_7bs() {
    BenchCheck.Plan plan = BenchCheck.Plan.llama2_7b(32);
    // 6.48e9 matrix parameters in the layers and 1.31e8 in lm_head, two bytes each
    assertThat(plan.weightBytesPerToken()).isEqualTo(2.0 * (32 * (4 * 4096.0 * 4096 + 3 * 4096.0 * 11008) + 32000 * 4096.0));
    assertThat(plan.prefillFlops()).isEqualTo(2 * 32 * (4 * 4096.0 * 4096 + 3 * 4096.0 * 11008) * 512
        + 2 * 32000 * 4096.0 + 4.0 * 32 * 4096 * 512 * 513 / 2);
  }

  @Test
  void aLayerCountOutsideOneTo32IsRefusedWithTheUsage(@TempDir Path folder) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    int status = BenchCheck.run(new String[] {folder.toString(), "--layers", "33"},
        new PrintStream(out, true, StandardCharsets.UTF_8));
    assertThat(status).isEqualTo(KernelCheck.EXIT_USAGE);
    assertThat(out.toString(StandardCharsets.UTF_8)).startsWith("usage: BenchCheck <output folder> [--layers N, 1 to 32");
  }

  @Test
  void withoutACudaDeviceTheCheckPrintsOneLineAndExitsWithTheNoDeviceStatus(@TempDir Path folder) throws Exception {
    NoDeviceRun.assertSaysNoDevice(BenchCheck.class, folder.resolve("out"), "--layers", "2");
    assertThat(folder.resolve("out/bench.jsonl")).doesNotExist();
  }
}
