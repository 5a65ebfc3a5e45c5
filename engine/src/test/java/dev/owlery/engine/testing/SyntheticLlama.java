package dev.owlery.engine.testing;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.owlery.engine.checkpoint.SafetensorsWriter;
import dev.owlery.engine.tensor.DType;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * A plain LLaMA checkpoint of any head layout with seeded random weights (matrices ~ N(0, 0.05^2),
 * norms 1), written in the Hugging Face layout ({@code config.json}, {@code model.safetensors}
 * F32, untied lm_head): for the tensor-parallel splits no vendored fixture has. {@code head_dim}
 * is {@code hiddenSize / numHeads}.
 */
public record SyntheticLlama(int hiddenSize, int intermediateSize, int numLayers, int numHeads, int numKvHeads,
    int vocabSize, long seed) {

  private static final double STD = 0.05;
  private static final int MAX_POSITIONS = 256;

  /** Writes the checkpoint into {@code dir} (created if missing) and returns {@code dir}. */
  public Path write(Path dir) {
    int headDim = hiddenSize / numHeads;
    SplittableRandom random = new SplittableRandom(seed);
    SafetensorsWriter writer = new SafetensorsWriter();
    writer.add("model.embed_tokens.weight", DType.F32, shape(vocabSize, hiddenSize),
        gaussian(random, vocabSize * hiddenSize));
    for (int i = 0; i < numLayers; i++) {
      String p = "model.layers." + i;
      writer.add(p + ".input_layernorm.weight", DType.F32, new long[] {hiddenSize}, ones(hiddenSize));
      writer.add(p + ".self_attn.q_proj.weight", DType.F32, shape(numHeads * headDim, hiddenSize),
          gaussian(random, numHeads * headDim * hiddenSize));
      writer.add(p + ".self_attn.k_proj.weight", DType.F32, shape(numKvHeads * headDim, hiddenSize),
          gaussian(random, numKvHeads * headDim * hiddenSize));
      writer.add(p + ".self_attn.v_proj.weight", DType.F32, shape(numKvHeads * headDim, hiddenSize),
          gaussian(random, numKvHeads * headDim * hiddenSize));
      writer.add(p + ".self_attn.o_proj.weight", DType.F32, shape(hiddenSize, numHeads * headDim),
          gaussian(random, hiddenSize * numHeads * headDim));
      writer.add(p + ".post_attention_layernorm.weight", DType.F32, new long[] {hiddenSize}, ones(hiddenSize));
      writer.add(p + ".mlp.gate_proj.weight", DType.F32, shape(intermediateSize, hiddenSize),
          gaussian(random, intermediateSize * hiddenSize));
      writer.add(p + ".mlp.up_proj.weight", DType.F32, shape(intermediateSize, hiddenSize),
          gaussian(random, intermediateSize * hiddenSize));
      writer.add(p + ".mlp.down_proj.weight", DType.F32, shape(hiddenSize, intermediateSize),
          gaussian(random, hiddenSize * intermediateSize));
    }
    writer.add("model.norm.weight", DType.F32, new long[] {hiddenSize}, ones(hiddenSize));
    writer.add("lm_head.weight", DType.F32, shape(vocabSize, hiddenSize), gaussian(random, vocabSize * hiddenSize));
    ObjectNode config = new ObjectMapper().createObjectNode()
        .put("model_type", "llama")
        .put("hidden_size", hiddenSize)
        .put("intermediate_size", intermediateSize)
        .put("num_hidden_layers", numLayers)
        .put("num_attention_heads", numHeads)
        .put("num_key_value_heads", numKvHeads)
        .put("vocab_size", vocabSize)
        .put("max_position_embeddings", MAX_POSITIONS)
        .put("rms_norm_eps", 1e-5)
        .put("rope_theta", 10000.0)
        .put("tie_word_embeddings", false)
        .put("bos_token_id", 1)
        .put("eos_token_id", 2);
    try {
      Files.createDirectories(dir);
      writer.write(dir.resolve("model.safetensors"));
      new ObjectMapper().writerWithDefaultPrettyPrinter().writeValue(dir.resolve("config.json").toFile(), config);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return dir;
  }

  private static long[] shape(int rows, int cols) {
    return new long[] {rows, cols};
  }

  private static float[] gaussian(SplittableRandom random, int count) {
    float[] values = new float[count];
    for (int i = 0; i < count; i++) {
      values[i] = (float) (STD * random.nextGaussian());
    }
    return values;
  }

  private static float[] ones(int count) {
    float[] values = new float[count];
    Arrays.fill(values, 1f);
    return values;
  }
}
