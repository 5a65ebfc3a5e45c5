package dev.owlery.engine.onednn;

import static org.assertj.core.api.Assertions.assertThat;

import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.checkpoint.SafetensorsCheckpoint;
import dev.owlery.engine.config.ModelConfig;
import dev.owlery.engine.onednn.testing.OneDnnTesting;
import dev.owlery.engine.testing.Fixtures;
import dev.owlery.engine.vision.VisionTower;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/** tiny-owl2's vision tower and abstractor on the onednn-bf16 kernels, against the official float32 dump. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class OneDnnVisionTowerTest {

  private Checkpoint model;
  private Checkpoint reference;
  private ModelConfig config;

  @BeforeAll
  void open() {
    OneDnnTesting.library();
    Path dir = Fixtures.tinyOwl2();
    config = ModelConfig.load(dir);
    model = SafetensorsCheckpoint.openFile(dir.resolve("model.safetensors"));
    reference = SafetensorsCheckpoint.openFile(dir.resolve("reference.safetensors"));
  }

  @AfterAll
  void close() {
    model.close();
    reference.close();
  }

  @Test
  void visualEmbedsAreTheBf16ArithmeticsAndNearTheFloat32Reference() {
    float[] pixels = reference.tensor("pixel_values").toFloatArray();
    float[] float32 = reference.tensor("visual_embeds").toFloatArray();
    float[] bf16Reference = new VisionTower(config, model, new Bf16ReferenceKernels()).encode(pixels);
    float[] actual;
    try (OneDnnKernels kernels = new OneDnnKernels(2)) {
      actual = new VisionTower(config, model, kernels).encode(pixels);
    }
    float againstBf16 = maxAbsDiff(actual, bf16Reference);
    float againstFloat32 = maxAbsDiff(actual, float32);
    float bf16AgainstFloat32 = maxAbsDiff(bf16Reference, float32);
    System.out.printf("tiny-owl2 visual_embeds, max abs: onednn-bf16 vs bf16 reference %.3g, vs float32 %.3g; "
        + "bf16 reference vs float32 %.3g; largest |float32| %.3g%n", againstBf16, againstFloat32, bf16AgainstFloat32,
        maxAbs(float32));
    // oneDNN computes the bfloat16 arithmetic written out in Bf16ReferenceKernels: measured 1.2e-3 apart,
    // the attention probabilities that round to the neighbouring bfloat16 where their float32 values
    // differ in the last bits (4.3e-6 with the matmuls alone), 30x less than bfloat16's own distance
    // from float32. Bound: a tenth of that distance.
    assertThat(againstBf16).isLessThanOrEqualTo(bf16AgainstFloat32 / 10);
    // Both are 0.036 from the float32 run on outputs up to 5.5 (0.7%): bfloat16's step of 2^-8 on every
    // operand of every matmul and attention product. Bound: 1% of the largest output; reading a weight
    // or an activation wrong (truncated to 16 bits, a swapped row) moves outputs by far more.
    assertThat(againstFloat32).isLessThanOrEqualTo(0.01f * maxAbs(float32)).isGreaterThan(0f);
  }

  private static float maxAbs(float[] values) {
    float max = 0;
    for (float v : values) {
      max = Math.max(max, Math.abs(v));
    }
    return max;
  }

  private static float maxAbsDiff(float[] a, float[] b) {
    assertThat(a).hasSameSizeAs(b);
    float max = 0;
    for (int i = 0; i < a.length; i++) {
      max = Math.max(max, Math.abs(a[i] - b[i]));
    }
    return max;
  }
}
