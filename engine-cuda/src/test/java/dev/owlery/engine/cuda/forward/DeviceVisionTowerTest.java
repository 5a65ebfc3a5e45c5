package dev.owlery.engine.cuda.forward;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.checkpoint.SafetensorsCheckpoint;
import dev.owlery.engine.config.ModelConfig;
import dev.owlery.engine.cuda.check.VisionCheck;
import dev.owlery.engine.cuda.runtime.CpuTwinDevice;
import dev.owlery.engine.kernel.ScalarKernels;
import dev.owlery.engine.tensor.WeightFormat;
import dev.owlery.engine.testing.Fixtures;
import dev.owlery.engine.vision.VisionTower;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The device vision tower's launch sequence on the CPU twins of the kernels, against the engine's
 * CPU {@link VisionTower} and the official dump on tiny-owl2 (56 px: 16 patches + CLS, 2 ViT layers,
 * 8 queries, 2 abstractor layers): one image, a batch of three different images against each alone,
 * and F16 weights.
 */
class DeviceVisionTowerTest {

  /** Fixture README "Tolerances": visual_embeds within 2e-4 max abs for a float32 implementation. */
  private static final double FIXTURE_TOLERANCE = 2e-4;
  /** tiny-owl2's image side in pixels. */
  private static final int IMAGE_SIZE = 56;

  /**
   * Max |visual_embeds(device) - visual_embeds(CPU)| with F16 weights on both sides, for one image and
   * for two in one pass. The attention runs on tensor cores (full_attention_f16), which rounds q, k, v
   * and the softmax weights to F16 (2^-11 relative) where the CPU keeps them in float32 (2.5e-3 on
   * its own, measured when one image's products still took gemv8); the products take gemm64_f16 (17
   * ViT rows per image, from DeviceMatrix.GEMM64_MIN_TOKENS = 8), which rounds x to F16 before them:
   * each rounding moves a product by at most 2^-11 of sum |w x|. LayerNorm renormalises between
   * layers, so the rows move by about 2^-11 of |visual_embeds| <= 5.5: measured 3.05e-3 for two
   * images on the twins when only passes of 32 rows or more took the GEMM (the bound is twice that),
   * 4.29e-3 (one image) and 4.79e-3 (two) since products of 8 rows or more do (1.6 x 2^-11 of 5.47).
   */
  private static final double F16_GEMM_BOUND = 6e-3;

  /**
   * As {@link #F16_GEMM_BOUND} for BF16: gemm_bf16 rounds x to BF16, 2^-8 relative (8 times F16's
   * 2^-11), so the rows move by about 2^-8 of |visual_embeds| <= 5.5: measured 1.9e-2 before the
   * attention ran on tensor cores, 1.6e-2 since (0.75 to 0.9 x 2^-8 of it; the bound is twice the
   * larger), 2.79e-2 (one image) and 3.28e-2 (two) since products of 8 rows or more take the GEMM.
   */
  private static final double BF16_GEMM_BOUND = 3.8e-2;

  private static ModelConfig config;
  private static Checkpoint model;
  private static float[] pixelValues;
  private static float[] officialVisualEmbeds;

  @BeforeAll
  static void open() {
    Path dir = Fixtures.tinyOwl2();
    config = ModelConfig.load(dir);
    model = SafetensorsCheckpoint.openFile(dir.resolve("model.safetensors"));
    try (Checkpoint reference = SafetensorsCheckpoint.openFile(dir.resolve("reference.safetensors"))) {
      pixelValues = reference.tensor("pixel_values").toFloatArray();
      officialVisualEmbeds = reference.tensor("visual_embeds").toFloatArray();
    }
  }

  @AfterAll
  static void close() {
    if (model != null) {
      model.close();
    }
  }

  @Test
  void visualEmbeddingsOfTinyOwl2EqualTheCpuTowerAndTheOfficialDump() {
    float[] cpu = new VisionTower(config, model, new ScalarKernels()).encode(pixelValues);
    try (CpuTwinDevice device = new CpuTwinDevice()) {
      DeviceVisionTower tower = new DeviceVisionTower(device, config, model, 1);
      float[] onDevice = tower.encode(List.of(pixelValues)).visualEmbeds().getFirst();

      assertThat(onDevice).hasSize(9 * 64);
      double toCpu = maxAbsDifference(onDevice, cpu);
      double toOfficial = maxAbsDifference(onDevice, officialVisualEmbeds);
      System.out.printf("device twins vs CPU tower %.3g, vs official dump %.3g%n", toCpu, toOfficial);
      assertThat(toCpu).isLessThanOrEqualTo(FIXTURE_TOLERANCE);
      assertThat(toOfficial).isLessThanOrEqualTo(FIXTURE_TOLERANCE);
    }
  }

  /**
   * Passes replayed from captured graphs (one pair per pass size, captured once) compute what the
   * eager launches compute, bit for bit, pass after pass: the copies they need stay outside.
   */
  @Test
  void passesReplayedFromCapturedGraphsEqualEagerPassesBitForBit() {
    List<float[]> images = List.of(pixelValues, VisionCheck.mirrored(pixelValues, IMAGE_SIZE),
        VisionCheck.noise(pixelValues.length));
    try (CpuTwinDevice device = new CpuTwinDevice()) {
      DeviceVisionTower tower = new DeviceVisionTower(device, config, model, 3);
      List<float[]> eagerThree = tower.encode(images).visualEmbeds();
      float[] eagerOne = tower.encode(List.of(images.get(1))).visualEmbeds().getFirst();

      tower.capturePasses();
      for (int round = 0; round < 2; round++) {
        List<float[]> replayed = tower.encode(images).visualEmbeds();
        for (int i = 0; i < 3; i++) {
          assertThat(replayed.get(i)).as("round %d image %d", round, i).containsExactly(eagerThree.get(i));
        }
        assertThat(tower.encode(List.of(images.get(1))).visualEmbeds().getFirst()).as("round %d", round)
            .containsExactly(eagerOne);
      }
      assertThat(tower.capturedPassSizes()).containsExactlyInAnyOrder(1, 3);
    }
  }

  @Test
  void aBatchOfThreeDifferentImagesEqualsEachImageRunAlone() {
    List<float[]> images = List.of(pixelValues, VisionCheck.mirrored(pixelValues, IMAGE_SIZE), VisionCheck.noise(pixelValues.length));
    try (CpuTwinDevice device = new CpuTwinDevice()) {
      DeviceVisionTower tower = new DeviceVisionTower(device, config, model, 3);
      List<float[]> batched = tower.encode(images).visualEmbeds();

      assertThat(batched).hasSize(3);
      for (int i = 0; i < 3; i++) {
        float[] alone = tower.encode(List.of(images.get(i))).visualEmbeds().getFirst();
        assertThat(batched.get(i)).as("image %d", i).containsExactly(alone);
      }
      // three different images give three different answers: the rows did not mix or repeat
      assertThat(maxAbsDifference(batched.get(0), batched.get(1))).isGreaterThan(1e-3);
      assertThat(maxAbsDifference(batched.get(1), batched.get(2))).isGreaterThan(1e-3);
    }
  }

  @Test
  void f16WeightsStayWithinTheirBoundsOfTheCpusF16Tower() {
    double[] differences = reducedPrecisionDifferences(WeightFormat.F16);
    assertThat(differences[0]).isGreaterThan(0).isLessThanOrEqualTo(F16_GEMM_BOUND);
    assertThat(differences[1]).isGreaterThan(0).isLessThanOrEqualTo(F16_GEMM_BOUND);
    // and the F16 tower is a different model from the float32 one: the conversion took place
    assertThat(differences[2]).isGreaterThan(FIXTURE_TOLERANCE);
  }

  @Test
  void bf16WeightsStayWithinTheirBoundsOfTheCpusBf16Tower() {
    double[] differences = reducedPrecisionDifferences(WeightFormat.BF16);
    assertThat(differences[0]).isGreaterThan(0).isLessThanOrEqualTo(BF16_GEMM_BOUND);
    assertThat(differences[1]).isGreaterThan(0).isLessThanOrEqualTo(BF16_GEMM_BOUND);
  }

  /**
   * Max |visual_embeds diff| against the CPU tower with the same converted weights: one image and two
   * images in one pass (products through gemm64, attention through full_attention_f16), and the one
   * image against the official float32 dump.
   */
  private static double[] reducedPrecisionDifferences(WeightFormat format) {
    try (Checkpoint converted = SafetensorsCheckpoint.openFile(Fixtures.tinyOwl2().resolve("model.safetensors"))
            .withWeightFormat(format);
        CpuTwinDevice device = new CpuTwinDevice()) {
      VisionTower cpu = new VisionTower(config, converted, new ScalarKernels());
      DeviceVisionTower tower = new DeviceVisionTower(device, config, converted, 2);
      float[] second = VisionCheck.mirrored(pixelValues, IMAGE_SIZE);
      float[] alone = tower.encode(List.of(pixelValues)).visualEmbeds().getFirst();
      List<float[]> both = tower.encode(List.of(pixelValues, second)).visualEmbeds();
      double[] differences = {maxAbsDifference(alone, cpu.encode(pixelValues)),
          Math.max(maxAbsDifference(both.get(0), cpu.encode(pixelValues)),
              maxAbsDifference(both.get(1), cpu.encode(second))),
          maxAbsDifference(alone, officialVisualEmbeds)};
      System.out.printf("%s weights: one image %.3g, two images %.3g from the CPU's %s tower (max |value| %.3g)%n",
          format, differences[0], differences[1], format, maxAbsDifference(alone, new float[alone.length]));
      return differences;
    }
  }

  @Test
  void refusesBatchesOutsideItsCapacityAndBadPixelsBeforeLaunchingAnything() {
    try (CpuTwinDevice device = new CpuTwinDevice()) {
      DeviceVisionTower tower = new DeviceVisionTower(device, config, model, 2);
      long launches = device.launches();
      assertThatThrownBy(() -> tower.encode(List.of(pixelValues, pixelValues, pixelValues)))
          .hasMessage("a vision pass takes 1..2 images. Given: 3");
      assertThatThrownBy(() -> tower.encode(List.of()))
          .hasMessage("a vision pass takes 1..2 images. Given: 0");
      float[] withNan = pixelValues.clone();
      withNan[5] = Float.NaN;
      assertThatThrownBy(() -> tower.encode(List.of(pixelValues, withNan)))
          .hasMessage("image 1's pixel values: element 5 is NaN, must be finite");
      assertThatThrownBy(() -> tower.encode(List.of(new float[3 * 448 * 448])))
          .hasMessage("image 0's pixel values: expected 3 x 56 x 56 = 9408 floats (CHW), got 602112");
      assertThat(device.launches()).isEqualTo(launches);
      // 17 tokens per image: 3855 images are 65535 rows, CUDA's grid limit in y
      assertThatThrownBy(() -> new DeviceVisionTower(device, config, model, 3856))
          .hasMessage("images per pass must be 1..3855 (a pass's 17-token rows take one grid row each in the F32 "
              + "product, at most 65535). Given: 3856");
    }
  }

  private static double maxAbsDifference(float[] a, float[] b) {
    assertThat(a).hasSameSizeAs(b);
    double max = 0;
    for (int i = 0; i < a.length; i++) {
      max = Math.max(max, Math.abs((double) a[i] - b[i]));
    }
    return max;
  }
}
