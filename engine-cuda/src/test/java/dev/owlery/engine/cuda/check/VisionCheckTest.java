package dev.owlery.engine.cuda.check;

import static org.assertj.core.api.Assertions.assertThat;

import dev.owlery.engine.cuda.runtime.CpuTwinDevice;
import dev.owlery.engine.testing.Fixtures;
import dev.owlery.engine.vision.SyntheticVisionTower;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * VisionCheck as the GPU check runs it: its parity cases and every measurement on the CPU twins of
 * the kernels (the speed at a tiny synthetic shape; the GPU run's is mPLUG-Owl2's), and its one-line
 * refusal where there is no device. Speeds are not asserted: only that each is a positive finite number.
 */
class VisionCheckTest {

  /** 28 px in patches of 14 (5 tokens), width 32, one ViT and one abstractor layer of 2 heads, 4 queries. */
  private static final VisionCheck.Plan TINY = new VisionCheck.Plan(
      new SyntheticVisionTower.Geometry(28, 14, 32, 64, 1, 2, 4, 48, 1, 2, 32), new int[] {1, 3}, 1, new int[] {2, 1});

  @Test
  void onTheCpuTwinsEveryParityCasePassesAndEveryMeasurementIsMade(@TempDir Path folder) throws Exception {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    int status;
    try (CpuTwinDevice twins = new CpuTwinDevice()) {
      status = VisionCheck.check(twins, Fixtures.tinyOwl2(), TINY, folder,
          new PrintStream(out, true, StandardCharsets.UTF_8));
    }
    String report = out.toString(StandardCharsets.UTF_8);
    System.out.print(report);
    assertThat(status).as(report).isEqualTo(KernelCheck.EXIT_PASSED);
    List<String> parity = Files.readAllLines(folder.resolve("vision_parity.jsonl"));
    assertThat(parity).extracting(row -> row.substring(0, row.indexOf(",\"max_abs\""))).containsExactly(
        "{\"case\":\"f32_one_image_vs_cpu\"", "{\"case\":\"f32_one_image_vs_official\"",
        "{\"case\":\"f32_pass_of_3_vs_alone\"", "{\"case\":\"f16_pass_of_2_vs_cpu_f16\"");
    assertThat(parity).allSatisfy(row -> assertThat(row).contains("\"passed\":true"));
    List<String> bench = Files.readAllLines(folder.resolve("vision_bench.jsonl"));
    assertThat(bench).extracting(row -> row.substring(0, row.indexOf(",\"value\""))).containsExactly(
        "{\"measurement\":\"vision_load_seconds\"", "{\"measurement\":\"vit_b1_images_per_s\"",
        "{\"measurement\":\"vision_b1_images_per_s\"", "{\"measurement\":\"vit_b3_images_per_s\"",
        "{\"measurement\":\"vision_b3_images_per_s\"");
    assertThat(bench).allSatisfy(row -> assertThat(row).doesNotContain("\"value\":null", "\"value\":-", "\"value\":0,"));
    assertThat(folder.resolve("synthetic")).as("the synthetic weights are deleted").doesNotExist();
    assertThat(report).endsWith("all 4 parity cases passed, 5 measurements made\n");
  }

  @Test
  void withoutACudaDeviceTheCheckPrintsOneLineAndExitsWithTheNoDeviceStatus(@TempDir Path folder) throws Exception {
    NoDeviceRun.assertSaysNoDevice(VisionCheck.class, folder.resolve("out"), Fixtures.tinyOwl2().getParent().toString());
    assertThat(folder.resolve("out/vision_bench.jsonl")).doesNotExist();
  }
}
