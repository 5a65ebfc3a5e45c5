package dev.owlery.engine.vision;

import dev.owlery.engine.checkpoint.SafetensorsWriter;
import dev.owlery.engine.tensor.DType;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;

/**
 * Writes a model folder holding only a vision tower and visual abstractor of a given geometry, with
 * seeded random weights scaled so activations stay O(1): for benchmarks of the real shapes
 * ({@link Geometry#mplugOwl2()}, CLIP ViT-L/14 at 448 px and the 6-layer abstractor) and for tests of
 * small ones. The config's text part is a placeholder the tower does not read.
 */
public final class SyntheticVisionTower {

  /** The sizes of the tower's config.json ({@code visual_config}) and the LLM width it projects to. */
  public record Geometry(int imageSize, int patchSize, int visionHidden, int visionIntermediate, int visionLayers,
      int visionHeads, int queries, int abstractorIntermediate, int abstractorLayers, int abstractorHeads,
      int llmHidden) {

    /** mPLUG-Owl2's own: ViT-L/14 at 448 px (1,025 tokens, 24 layers), 64 queries, 6 abstractor layers, LLM 4096. */
    public static Geometry mplugOwl2() {
      return new Geometry(448, 14, 1024, 4096, 24, 16, 64, 2816, 6, 16, 4096);
    }

    int grid() {
      return imageSize / patchSize;
    }

    /** config.json for this geometry. */
    public String configJson() {
      return """
          {"model_type": "mplug_owl2", "vocab_size": 100, "hidden_size": %d, "intermediate_size": 96,
           "num_hidden_layers": 1, "num_attention_heads": 4, "rms_norm_eps": 1e-5,
           "visual_config": {
             "visual_model": {"hidden_size": %d, "intermediate_size": %d, "num_hidden_layers": %d,
               "num_attention_heads": %d, "image_size": %d, "patch_size": %d, "layer_norm_eps": 1e-6},
             "visual_abstractor": {"num_learnable_queries": %d, "hidden_size": %d, "encoder_hidden_size": %d,
               "num_hidden_layers": %d, "num_attention_heads": %d, "intermediate_size": %d,
               "layer_norm_eps": 1e-6, "grid_size": %d}}}
          """.formatted(llmHidden, visionHidden, visionIntermediate, visionLayers, visionHeads, imageSize, patchSize,
          queries, visionHidden, visionHidden, abstractorLayers, abstractorHeads, abstractorIntermediate, grid());
    }
  }

  private final SafetensorsWriter writer = new SafetensorsWriter();
  private final DType dtype;
  private final SplittableRandom random;

  private SyntheticVisionTower(DType dtype, long seed) {
    this.dtype = dtype;
    this.random = new SplittableRandom(seed);
  }

  /** Writes {@code dir/config.json} and {@code dir/model.safetensors} (weights in {@code dtype}); returns dir. */
  public static Path write(Geometry g, DType dtype, long seed, Path dir) {
    SyntheticVisionTower t = new SyntheticVisionTower(dtype, seed);
    t.addTensors(g);
    try {
      Files.createDirectories(dir);
      Files.writeString(dir.resolve("config.json"), g.configJson());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    t.writer.write(dir.resolve("model.safetensors"));
    return dir;
  }

  private void addTensors(Geometry g) {
    int d = g.visionHidden();
    int p = g.patchSize();
    int tokens = 1 + g.grid() * g.grid();
    String v = VisionEncoder.PREFIX;
    put(v + "embeddings.patch_embed.weight", 0.05f, 0f, d, 3, p, p);
    put(v + "embeddings.cls_token", 1f, 0f, 1, 1, d);
    put(v + "embeddings.position_embedding", 0.5f, 0f, 1, tokens, d);
    layerNorm(v + "embeddings.pre_layernorm", d);
    layerNorm(v + "post_layernorm", d);
    for (int l = 0; l < g.visionLayers(); l++) {
      String layer = v + "encoder.layers." + l;
      layerNorm(layer + ".input_layernorm", d);
      linear(layer + ".self_attn.query_key_value", 3 * d, d);
      linear(layer + ".self_attn.dense", d, d);
      layerNorm(layer + ".post_attention_layernorm", d);
      linear(layer + ".mlp.fc1", g.visionIntermediate(), d);
      linear(layer + ".mlp.fc2", d, g.visionIntermediate());
    }
    String a = VisualAbstractor.PREFIX;
    put(a + "query_embeds", 1f, 0f, 1, g.queries(), d);
    put(a + "vit_eos", 1f, 0f, 1, 1, g.llmHidden());
    linear(a + "visual_fc", g.llmHidden(), d);
    for (int l = 0; l < g.abstractorLayers(); l++) {
      String layer = a + "encoder.layers." + l + ".crossattention";
      layerNorm(layer + ".norm1", d);
      layerNorm(layer + ".normk", d);
      linear(layer + ".attention.query", d, d);
      linear(layer + ".attention.key", d, d);
      linear(layer + ".attention.value", d, d);
      linear(layer + ".output.out_proj", d, d);
      layerNorm(layer + ".output.norm2", d);
      linear(layer + ".output.mlp.w1", g.abstractorIntermediate(), d);
      linear(layer + ".output.mlp.w3", g.abstractorIntermediate(), d);
      layerNorm(layer + ".output.mlp.ffn_ln", g.abstractorIntermediate());
      linear(layer + ".output.mlp.w2", d, g.abstractorIntermediate());
    }
  }

  private void linear(String prefix, int out, int in) {
    put(prefix + ".weight", (float) (1 / Math.sqrt(in)), 0f, out, in);
    put(prefix + ".bias", 0.02f, 0f, out);
  }

  private void layerNorm(String prefix, int size) {
    put(prefix + ".weight", 0.1f, 1f, size);
    put(prefix + ".bias", 0.1f, 0f, size);
  }

  /** A tensor of normal values with standard deviation {@code scale} around {@code mean}. */
  private void put(String name, float scale, float mean, long... shape) {
    long n = 1;
    for (long s : shape) {
      n *= s;
    }
    float[] values = new float[Math.toIntExact(n)];
    for (int i = 0; i < values.length; i++) {
      values[i] = mean + scale * (float) random.nextGaussian();
    }
    writer.add(name, dtype, shape, values);
  }
}
