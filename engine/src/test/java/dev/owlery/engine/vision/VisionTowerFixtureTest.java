package dev.owlery.engine.vision;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.checkpoint.SafetensorsCheckpoint;
import dev.owlery.engine.config.ModelConfig;
import dev.owlery.engine.kernel.Kernels;
import dev.owlery.engine.kernel.ScalarKernels;
import dev.owlery.engine.testing.Fixtures;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/** The vision tower against the activations the official code dumped for tiny-owl2 (float32, CPU). */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class VisionTowerFixtureTest {

  /**
   * Fixture README "Tolerances": vision / abstractor activations and visual_embeds, 2e-4 max abs for
   * a float32 implementation (an independent numpy float32 port differs by ≤ 5e-6 on hidden states).
   */
  private static final float TOLERANCE = 2e-4f;

  private final Kernels kernels = new ScalarKernels();
  private Checkpoint model;
  private Checkpoint reference;
  private ModelConfig config;

  @BeforeAll
  void open() {
    Path dir = Fixtures.tinyOwl2();
    config = ModelConfig.load(dir);
    model = SafetensorsCheckpoint.openFile(dir.resolve("model.safetensors"));
    reference = SafetensorsCheckpoint.openFile(dir.resolve("reference.safetensors"));
  }

  @AfterAll
  void close() {
    if (model != null) {
      model.close();
    }
    if (reference != null) {
      reference.close();
    }
  }

  @Test
  void visionEncoderStagesMatchTheOfficialDump() {
    VisionEncoder encoder = new VisionEncoder(config.vision(), model, kernels);
    Map<String, float[]> taps = new HashMap<>();
    float[] out = encoder.forward(expected("pixel_values"), record(taps));

    assertThat(out).hasSize(17 * 64);
    for (String stage : List.of("vision.embeddings", "vision.layer.0.output", "vision.layer.1.output",
        "vision.last_hidden_state")) {
      assertClose(stage, taps.get(stage));
    }
    assertThat(maxAbsDiff(out, expected("vision.last_hidden_state"))).isLessThanOrEqualTo(TOLERANCE);
  }

  @Test
  void abstractorStagesMatchTheOfficialDumpWithStoredTables() {
    VisualAbstractor abstractor = new VisualAbstractor(config.abstractor(), config.text().hiddenSize(), model, kernels);
    Map<String, float[]> taps = new HashMap<>();
    float[] out = abstractor.forward(expected("vision.last_hidden_state"), record(taps));

    assertThat(abstractor.storedPositionTables()).isTrue();
    assertThat(out).hasSize(9 * 64);
    for (String stage : List.of("abstractor.layer.0.output", "abstractor.layer.1.output",
        "abstractor.visual_fc_output", "visual_embeds")) {
      assertClose(stage, taps.get(stage));
    }
  }

  @Test
  void abstractorMatchesWithComputedTablesWhenTheCheckpointLacksThem() {
    // Spec §3: a float32 checkpoint stores exactly the computed tables, so hiding them must not move the output.
    Checkpoint withoutTables = InMemoryCheckpoint.filtered(model, name -> !name.endsWith("_pos_embed"));
    VisualAbstractor abstractor =
        new VisualAbstractor(config.abstractor(), config.text().hiddenSize(), withoutTables, kernels);
    Map<String, float[]> taps = new HashMap<>();
    abstractor.forward(expected("vision.last_hidden_state"), record(taps));

    assertThat(abstractor.storedPositionTables()).isFalse();
    for (String stage : List.of("abstractor.layer.0.output", "abstractor.layer.1.output",
        "abstractor.visual_fc_output", "visual_embeds")) {
      assertClose(stage, taps.get(stage));
    }
  }

  @Test
  void pixelValuesToVisualEmbedsEndToEnd() {
    VisionTower tower = new VisionTower(config, model, kernels);
    float[] visualEmbeds = tower.encode(expected("pixel_values"));

    assertThat(tower.numVisualTokens()).isEqualTo(9);
    assertThat(tower.hiddenSize()).isEqualTo(64);
    assertThat(visualEmbeds).hasSize(9 * 64);
    assertClose("visual_embeds", visualEmbeds);
  }

  @Test
  void rejectsPixelValuesOfTheWrongSize() {
    VisionTower tower = new VisionTower(config, model, kernels);
    assertThatThrownBy(() -> tower.encode(new float[3 * 448 * 448]))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("expected 3 x 56 x 56 = 9408 floats (CHW), got 602112");
    float[] withNan = new float[tower.numPixelValues()];
    withNan[5] = Float.NaN;
    assertThatThrownBy(() -> tower.encode(withNan))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("element 5 is NaN");
  }

  @Test
  void rejectsAbstractorInputOfTheWrongSize() {
    VisualAbstractor abstractor = new VisualAbstractor(config.abstractor(), config.text().hiddenSize(), model, kernels);
    assertThatThrownBy(() -> abstractor.forward(new float[16 * 64]))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("expected 17 tokens x 64 = 1088 floats, got 1024");
  }

  private void assertClose(String stage, float[] actual) {
    assertThat(actual).as("tap %s", stage).isNotNull();
    float error = maxAbsDiff(actual, expected(stage));
    assertThat(error).as("max abs error of %s", stage).isLessThanOrEqualTo(TOLERANCE);
  }

  private float[] expected(String name) {
    return reference.tensor(name).toFloatArray();
  }

  private static ActivationTap record(Map<String, float[]> taps) {
    return (name, values, offset, length) ->
        taps.put(name, java.util.Arrays.copyOfRange(values, offset, offset + length));
  }

  static float maxAbsDiff(float[] actual, float[] expected) {
    assertThat(actual).hasSameSizeAs(expected);
    float max = 0f;
    for (int i = 0; i < actual.length; i++) {
      max = Math.max(max, Math.abs(actual[i] - expected[i]));
    }
    return max;
  }
}
