package dev.owlery.engine.vision;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.owlery.engine.checkpoint.CheckpointException;
import dev.owlery.engine.config.ModelConfig;
import dev.owlery.engine.kernel.ScalarKernels;
import dev.owlery.engine.tensor.DType;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The vision tower on a geometry unlike tiny-owl2's (84 px, grid 6, 2 heads, 3 queries, LLM width
 * 48 ≠ vision width 32), random weights without stored position tables: everything must follow
 * the config.
 */
class VisionTowerGeometryTest {

  private static final int IMAGE = 84;
  private static final int PATCH = 14;
  private static final int GRID = IMAGE / PATCH;
  private static final int VISION_HIDDEN = 32;
  private static final int VISION_INTERMEDIATE = 48;
  private static final int QUERIES = 3;
  private static final int ABSTRACTOR_INTERMEDIATE = 40;
  private static final int LLM_HIDDEN = 48;
  private static final int LAYERS = 2;

  private static final String CONFIG = """
      {"model_type": "mplug_owl2", "vocab_size": 100, "hidden_size": %d, "intermediate_size": 96,
       "num_hidden_layers": 1, "num_attention_heads": 4, "rms_norm_eps": 1e-5,
       "visual_config": {
         "visual_model": {"hidden_size": %d, "intermediate_size": %d, "num_hidden_layers": %d,
           "num_attention_heads": 2, "image_size": %d, "patch_size": %d, "layer_norm_eps": 1e-6},
         "visual_abstractor": {"num_learnable_queries": %d, "hidden_size": %d, "encoder_hidden_size": %d,
           "num_hidden_layers": %d, "num_attention_heads": 2, "intermediate_size": %d,
           "layer_norm_eps": 1e-6, "grid_size": %d}}}
      """.formatted(LLM_HIDDEN, VISION_HIDDEN, VISION_INTERMEDIATE, LAYERS, IMAGE, PATCH, QUERIES,
      VISION_HIDDEN, VISION_HIDDEN, LAYERS, ABSTRACTOR_INTERMEDIATE, GRID);

  @ParameterizedTest
  @EnumSource(value = DType.class, names = {"F32", "F16", "BF16"})
  void encodesToQueriesPlusOneRowsOfTheLlmWidth(DType dtype) throws Exception {
    ModelConfig config = ModelConfig.parse(new ObjectMapper().readTree(CONFIG));
    InMemoryCheckpoint checkpoint = randomCheckpoint(dtype, new Random(7));
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
    ModelConfig config = ModelConfig.parse(new ObjectMapper().readTree(CONFIG));
    InMemoryCheckpoint checkpoint = randomCheckpoint(DType.F32, new Random(7));
    Random random = new Random(3);
    checkpoint.put(VisionEncoder.PREFIX + "embeddings.position_embedding", DType.F32,
        values(random, 17 * VISION_HIDDEN, 0.1f, 0f), 1, 17, VISION_HIDDEN);

    assertThatThrownBy(() -> new VisionTower(config, checkpoint, new ScalarKernels()))
        .isInstanceOf(CheckpointException.class)
        .hasMessageContaining("model.vision_model.embeddings.position_embedding")
        .hasMessageContaining("shape [1, 17, 32] does not match the config, which needs [1, 37, 32]");
  }

  /** Every tensor the tower needs, random and scaled so activations stay O(1); no position tables. */
  static InMemoryCheckpoint randomCheckpoint(DType dtype, Random random) {
    InMemoryCheckpoint c = new InMemoryCheckpoint(Path.of("random-geometry-test"));
    int d = VISION_HIDDEN;
    String v = VisionEncoder.PREFIX;
    c.put(v + "embeddings.patch_embed.weight", dtype, values(random, d * 3 * PATCH * PATCH, 0.05f, 0f), d, 3, PATCH, PATCH);
    c.put(v + "embeddings.cls_token", dtype, values(random, d, 1f, 0f), 1, 1, d);
    c.put(v + "embeddings.position_embedding", dtype, values(random, (1 + GRID * GRID) * d, 0.5f, 0f), 1, 1 + GRID * GRID, d);
    layerNorm(c, dtype, random, v + "embeddings.pre_layernorm", d);
    layerNorm(c, dtype, random, v + "post_layernorm", d);
    for (int l = 0; l < LAYERS; l++) {
      String p = v + "encoder.layers." + l;
      layerNorm(c, dtype, random, p + ".input_layernorm", d);
      linear(c, dtype, random, p + ".self_attn.query_key_value", 3 * d, d);
      linear(c, dtype, random, p + ".self_attn.dense", d, d);
      layerNorm(c, dtype, random, p + ".post_attention_layernorm", d);
      linear(c, dtype, random, p + ".mlp.fc1", VISION_INTERMEDIATE, d);
      linear(c, dtype, random, p + ".mlp.fc2", d, VISION_INTERMEDIATE);
    }
    String a = VisualAbstractor.PREFIX;
    c.put(a + "query_embeds", dtype, values(random, QUERIES * d, 1f, 0f), 1, QUERIES, d);
    c.put(a + "vit_eos", dtype, values(random, LLM_HIDDEN, 1f, 0f), 1, 1, LLM_HIDDEN);
    linear(c, dtype, random, a + "visual_fc", LLM_HIDDEN, d);
    for (int l = 0; l < LAYERS; l++) {
      String p = a + "encoder.layers." + l + ".crossattention";
      layerNorm(c, dtype, random, p + ".norm1", d);
      layerNorm(c, dtype, random, p + ".normk", d);
      linear(c, dtype, random, p + ".attention.query", d, d);
      linear(c, dtype, random, p + ".attention.key", d, d);
      linear(c, dtype, random, p + ".attention.value", d, d);
      linear(c, dtype, random, p + ".output.out_proj", d, d);
      layerNorm(c, dtype, random, p + ".output.norm2", d);
      linear(c, dtype, random, p + ".output.mlp.w1", ABSTRACTOR_INTERMEDIATE, d);
      linear(c, dtype, random, p + ".output.mlp.w3", ABSTRACTOR_INTERMEDIATE, d);
      layerNorm(c, dtype, random, p + ".output.mlp.ffn_ln", ABSTRACTOR_INTERMEDIATE);
      linear(c, dtype, random, p + ".output.mlp.w2", d, ABSTRACTOR_INTERMEDIATE);
    }
    return c;
  }

  private static void linear(InMemoryCheckpoint c, DType dtype, Random random, String prefix, int out, int in) {
    c.put(prefix + ".weight", dtype, values(random, out * in, (float) (1 / Math.sqrt(in)), 0f), out, in);
    c.put(prefix + ".bias", dtype, values(random, out, 0.02f, 0f), out);
  }

  private static void layerNorm(InMemoryCheckpoint c, DType dtype, Random random, String prefix, int size) {
    c.put(prefix + ".weight", dtype, values(random, size, 0.1f, 1f), size);
    c.put(prefix + ".bias", dtype, values(random, size, 0.1f, 0f), size);
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
