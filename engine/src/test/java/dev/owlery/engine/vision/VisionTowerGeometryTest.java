package dev.owlery.engine.vision;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.checkpoint.CheckpointException;
import dev.owlery.engine.checkpoint.SafetensorsCheckpoint;
import dev.owlery.engine.config.ModelConfig;
import dev.owlery.engine.kernel.ScalarKernels;
import dev.owlery.engine.tensor.DType;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The vision tower on a geometry unlike tiny-owl2's (84 px, grid 6, 2 heads, 3 queries, LLM width
 * 48 ≠ vision width 32), random weights without stored position tables: everything must follow
 * the config. The weights come from {@link SyntheticVisionTower}, the generator the benchmark uses
 * at full size.
 */
class VisionTowerGeometryTest {

  private static final int IMAGE = 84;
  private static final int VISION_HIDDEN = 32;
  private static final int QUERIES = 3;
  private static final int LLM_HIDDEN = 48;
  private static final SyntheticVisionTower.Geometry GEOMETRY =
      new SyntheticVisionTower.Geometry(IMAGE, 14, VISION_HIDDEN, 48, 2, 2, QUERIES, 40, 2, 2, LLM_HIDDEN);

  @TempDir
  Path dir;

  @ParameterizedTest
  @EnumSource(value = DType.class, names = {"F32", "F16", "BF16"})
  void encodesToQueriesPlusOneRowsOfTheLlmWidth(DType dtype) throws Exception {
    SyntheticVisionTower.write(GEOMETRY, dtype, 7, dir);
    ModelConfig config = ModelConfig.load(dir);
    try (Checkpoint checkpoint = SafetensorsCheckpoint.openFile(dir.resolve("model.safetensors"))) {
      encodesToQueriesPlusOneRowsOfTheLlmWidth(config, checkpoint);
    }
  }

  private static void encodesToQueriesPlusOneRowsOfTheLlmWidth(ModelConfig config, Checkpoint checkpoint) {
    VisionTower tower = new VisionTower(config, checkpoint, new ScalarKernels());

    float[] image = randomPixels(new Random(11));
    float[] visualEmbeds = tower.encode(image);
    float[] otherImage = randomPixels(new Random(12));
    float[] otherEmbeds = tower.encode(otherImage);

    assertThat(tower.abstractor().storedPositionTables()).isFalse();
    assertThat(tower.numPixelValues()).isEqualTo(3 * IMAGE * IMAGE);
    assertThat(tower.numVisualTokens()).isEqualTo(QUERIES + 1);
    assertThat(tower.hiddenSize()).isEqualTo(LLM_HIDDEN);
    assertThat(visualEmbeds).hasSize((QUERIES + 1) * LLM_HIDDEN);
    for (int i = 0; i < visualEmbeds.length; i++) {
      assertThat(Float.isFinite(visualEmbeds[i])).as("element %d = %s", i, visualEmbeds[i]).isTrue();
    }
    // the last row is vit_eos as stored; the query rows depend on the picture
    float[] vitEos = checkpoint.tensor(VisualAbstractor.PREFIX + "vit_eos").toFloatArray();
    for (int i = 0; i < LLM_HIDDEN; i++) {
      assertThat(visualEmbeds[QUERIES * LLM_HIDDEN + i]).isEqualTo(vitEos[i]);
    }
    assertThat(VisionTowerFixtureTest.maxAbsDiff(visualEmbeds, otherEmbeds)).isGreaterThan(1e-3f);
  }

  @Test
  void aTensorShapedForAnotherConfigFailsNamingTensorAndShapes() throws Exception {
    SyntheticVisionTower.write(GEOMETRY, DType.F32, 7, dir);
    ModelConfig config = ModelConfig.load(dir);
    try (Checkpoint file = SafetensorsCheckpoint.openFile(dir.resolve("model.safetensors"))) {
      InMemoryCheckpoint checkpoint = InMemoryCheckpoint.filtered(file, name -> true);
      checkpoint.put(VisionEncoder.PREFIX + "embeddings.position_embedding", DType.F32,
          values(new Random(3), 17 * VISION_HIDDEN, 0.1f, 0f), 1, 17, VISION_HIDDEN);

      assertThatThrownBy(() -> new VisionTower(config, checkpoint, new ScalarKernels()))
          .isInstanceOf(CheckpointException.class)
          .hasMessageContaining("model.vision_model.embeddings.position_embedding")
          .hasMessageContaining("shape [1, 17, 32] does not match the config, which needs [1, 37, 32]");
    }
  }

  private static float[] values(Random random, int n, float scale, float mean) {
    float[] out = new float[n];
    for (int i = 0; i < n; i++) {
      out[i] = mean + scale * (float) random.nextGaussian();
    }
    return out;
  }

  private static float[] randomPixels(Random random) {
    return values(random, 3 * IMAGE * IMAGE, 1f, 0f);
  }
}
