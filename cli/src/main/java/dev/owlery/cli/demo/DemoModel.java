package dev.owlery.cli.demo;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.owlery.engine.checkpoint.SafetensorsWriter;
import dev.owlery.engine.tensor.DType;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Comparator;
import java.util.Random;
import java.util.stream.Stream;

/**
 * Owlery's built-in demo model: a tiny mPLUG-Owl2 with seeded random weights, written in the real
 * checkpoint layout (config.json with the official field names, model.safetensors with the
 * official state-dict names of spec §8, tokenizer.model, preprocessor_config.json). Its text is
 * meaningless; it exists so that the whole path runs on a fresh machine without a download.
 */
public final class DemoModel {

  /** Bumped whenever the layout or sizes change, so an old cached copy is rewritten. */
  static final String VERSION = "2";
  private static final long SEED = 20261126L;

  // Sizes: small enough to write in a blink and run at interactive speed on two cores, with
  // two MAM branches, GQA-free MHA (as mPLUG-Owl2 requires) and a 112 px image (8x8 patches).
  private static final int HIDDEN = 128;
  private static final int INTERMEDIATE = 344;
  private static final int LAYERS = 2;
  private static final int HEADS = 4;
  private static final int MAX_POSITIONS = 512;
  private static final int IMAGE = 112;
  private static final int PATCH = 14;
  private static final int V_HIDDEN = 64;
  private static final int V_INTERMEDIATE = 256;
  private static final int V_LAYERS = 2;
  private static final int V_HEADS = 4;
  private static final int QUERIES = 8;
  private static final int A_INTERMEDIATE = 176;
  private static final int A_LAYERS = 2;
  private static final int A_HEADS = 4;

  private static final ObjectMapper JSON = new ObjectMapper();

  private DemoModel() {}

  /** The default cache folder: {@code $OWLERY_CACHE/demo-model} or {@code ~/.cache/owlery/demo-model}. */
  public static Path defaultDirectory() {
    String cache = System.getenv("OWLERY_CACHE");
    Path base = cache != null && !cache.isBlank()
        ? Path.of(cache)
        : Path.of(System.getProperty("user.home"), ".cache", "owlery");
    return base.resolve("demo-model");
  }

  /** True when {@code dir} holds a complete demo model of the current version. */
  public static boolean isPresent(Path dir) {
    try {
      return Files.isRegularFile(dir.resolve("model.safetensors"))
          && VERSION.equals(Files.readString(dir.resolve("OWLERY_DEMO_VERSION")).strip());
    } catch (IOException e) {
      return false;
    }
  }

  /** Writes the demo model into {@code dir} (replacing an outdated one) unless it is already there. */
  public static Path ensure(Path dir) {
    if (isPresent(dir)) {
      return dir;
    }
    try {
      Files.createDirectories(dir.getParent());
      Path staging = Files.createTempDirectory(dir.getParent(), "demo-model-");
      write(staging);
      if (Files.exists(dir)) {
        deleteRecursively(dir);
      }
      try {
        Files.move(staging, dir, StandardCopyOption.ATOMIC_MOVE);
      } catch (AtomicMoveNotSupportedException e) {
        Files.move(staging, dir);
      }
      return dir;
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write the demo model to " + dir + ": " + e.getMessage(), e);
    }
  }

  /** Writes every file of the demo model into the existing folder {@code dir}. */
  static void write(Path dir) throws IOException {
    var tokenizer = DemoTokenizer.build(64);
    int vocab = tokenizer.getPiecesCount();
    Files.write(dir.resolve("tokenizer.model"), tokenizer.toByteArray());
    Files.writeString(dir.resolve("config.json"), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(config(vocab)));
    Files.writeString(dir.resolve("generation_config.json"), "{\"bos_token_id\": 1, \"eos_token_id\": 2}\n");
    Files.writeString(dir.resolve("preprocessor_config.json"), preprocessorConfig());
    Files.writeString(dir.resolve("tokenizer_config.json"),
        "{\"tokenizer_class\": \"LlamaTokenizer\", \"add_bos_token\": true, \"add_eos_token\": false, \"legacy\": true}\n");
    weights(vocab).write(dir.resolve("model.safetensors"));
    Files.writeString(dir.resolve("OWLERY_DEMO_VERSION"), VERSION + "\n");
  }

  private static ObjectNode config(int vocab) {
    ObjectNode root = JSON.createObjectNode();
    root.putArray("architectures").add("MPLUGOwl2LlamaForCausalLM");
    root.put("model_type", "mplug_owl2");
    root.put("vocab_size", vocab);
    root.put("hidden_size", HIDDEN);
    root.put("intermediate_size", INTERMEDIATE);
    root.put("num_hidden_layers", LAYERS);
    root.put("num_attention_heads", HEADS);
    root.put("num_key_value_heads", HEADS);
    root.put("max_position_embeddings", MAX_POSITIONS);
    root.put("rms_norm_eps", 1e-6);
    root.put("rope_theta", 10000.0);
    root.putNull("rope_scaling");
    root.put("hidden_act", "silu");
    root.put("attention_bias", false);
    root.put("tie_word_embeddings", false);
    root.put("bos_token_id", 1);
    root.put("eos_token_id", 2);
    root.put("torch_dtype", "float32");
    ObjectNode visual = root.putObject("visual_config");
    ObjectNode vm = visual.putObject("visual_model");
    vm.put("hidden_size", V_HIDDEN);
    vm.put("intermediate_size", V_INTERMEDIATE);
    vm.put("num_hidden_layers", V_LAYERS);
    vm.put("num_attention_heads", V_HEADS);
    vm.put("num_channels", 3);
    vm.put("image_size", IMAGE);
    vm.put("patch_size", PATCH);
    vm.put("hidden_act", "quick_gelu");
    vm.put("layer_norm_eps", 1e-6);
    vm.put("use_cls_token", true);
    vm.put("use_post_layernorm", true);
    ObjectNode va = visual.putObject("visual_abstractor");
    va.put("num_learnable_queries", QUERIES);
    va.put("hidden_size", V_HIDDEN);
    va.put("encoder_hidden_size", V_HIDDEN);
    va.put("num_hidden_layers", A_LAYERS);
    va.put("num_attention_heads", A_HEADS);
    va.put("intermediate_size", A_INTERMEDIATE);
    va.put("layer_norm_eps", 1e-6);
    va.put("grid_size", IMAGE / PATCH);
    va.put("add_v2t_pos_emb", false);
    va.put("use_cls_token", true);
    return root;
  }

  private static String preprocessorConfig() {
    return """
        {
          "crop_size": %d,
          "do_center_crop": true,
          "do_normalize": true,
          "do_resize": true,
          "image_mean": [0.48145466, 0.4578275, 0.40821073],
          "image_std": [0.26862954, 0.26130258, 0.27577711],
          "resample": 3,
          "size": %d
        }
        """.formatted(IMAGE, IMAGE);
  }

  /** Every tensor of spec §8's layout at the demo sizes; matrices scaled by 1/sqrt(fan-in). */
  private static SafetensorsWriter weights(int vocab) {
    Random random = new Random(SEED);
    SafetensorsWriter w = new SafetensorsWriter();
    w.add("model.embed_tokens.weight", DType.F32, shape(vocab, HIDDEN), gaussian(random, vocab * HIDDEN, 1f));
    for (int i = 0; i < LAYERS; i++) {
      String p = "model.layers." + i + ".";
      linear(w, random, p + "self_attn.q_proj.weight", HIDDEN, HIDDEN);
      for (int m = 0; m < 2; m++) {
        linear(w, random, p + "self_attn.k_proj.multiway." + m + ".weight", HIDDEN, HIDDEN);
        linear(w, random, p + "self_attn.v_proj.multiway." + m + ".weight", HIDDEN, HIDDEN);
        norm(w, random, p + "input_layernorm.multiway." + m + ".weight", HIDDEN);
        norm(w, random, p + "post_attention_layernorm.multiway." + m + ".weight", HIDDEN);
      }
      linear(w, random, p + "self_attn.o_proj.weight", HIDDEN, HIDDEN);
      linear(w, random, p + "mlp.gate_proj.weight", INTERMEDIATE, HIDDEN);
      linear(w, random, p + "mlp.up_proj.weight", INTERMEDIATE, HIDDEN);
      linear(w, random, p + "mlp.down_proj.weight", HIDDEN, INTERMEDIATE);
    }
    norm(w, random, "model.norm.weight", HIDDEN);
    linear(w, random, "lm_head.weight", vocab, HIDDEN);
    int grid = IMAGE / PATCH;
    int numTokens = 1 + grid * grid;
    String v = "model.vision_model.";
    w.add(v + "embeddings.cls_token", DType.F32, shape(1, 1, V_HIDDEN), gaussian(random, V_HIDDEN, 1f));
    w.add(v + "embeddings.patch_embed.weight", DType.F32, shape(V_HIDDEN, 3, PATCH, PATCH),
        gaussian(random, V_HIDDEN * 3 * PATCH * PATCH, (float) (1 / Math.sqrt(3.0 * PATCH * PATCH))));
    w.add(v + "embeddings.position_embedding", DType.F32, shape(1, numTokens, V_HIDDEN),
        gaussian(random, numTokens * V_HIDDEN, 0.1f));
    layerNorm(w, random, v + "embeddings.pre_layernorm", V_HIDDEN);
    for (int j = 0; j < V_LAYERS; j++) {
      String p = v + "encoder.layers." + j + ".";
      layerNorm(w, random, p + "input_layernorm", V_HIDDEN);
      linearWithBias(w, random, p + "self_attn.query_key_value", 3 * V_HIDDEN, V_HIDDEN);
      linearWithBias(w, random, p + "self_attn.dense", V_HIDDEN, V_HIDDEN);
      layerNorm(w, random, p + "post_attention_layernorm", V_HIDDEN);
      linearWithBias(w, random, p + "mlp.fc1", V_INTERMEDIATE, V_HIDDEN);
      linearWithBias(w, random, p + "mlp.fc2", V_HIDDEN, V_INTERMEDIATE);
    }
    layerNorm(w, random, v + "post_layernorm", V_HIDDEN);
    String a = "model.visual_abstractor.";
    w.add(a + "query_embeds", DType.F32, shape(1, QUERIES, V_HIDDEN), gaussian(random, QUERIES * V_HIDDEN, 1f));
    linearWithBias(w, random, a + "visual_fc", HIDDEN, V_HIDDEN);
    w.add(a + "vit_eos", DType.F32, shape(1, 1, HIDDEN), gaussian(random, HIDDEN, 1f));
    for (int l = 0; l < A_LAYERS; l++) {
      String p = a + "encoder.layers." + l + ".crossattention.";
      linearWithBias(w, random, p + "attention.query", V_HIDDEN, V_HIDDEN);
      linearWithBias(w, random, p + "attention.key", V_HIDDEN, V_HIDDEN);
      linearWithBias(w, random, p + "attention.value", V_HIDDEN, V_HIDDEN);
      layerNorm(w, random, p + "norm1", V_HIDDEN);
      layerNorm(w, random, p + "normk", V_HIDDEN);
      linearWithBias(w, random, p + "output.out_proj", V_HIDDEN, V_HIDDEN);
      layerNorm(w, random, p + "output.norm2", V_HIDDEN);
      linearWithBias(w, random, p + "output.mlp.w1", A_INTERMEDIATE, V_HIDDEN);
      linearWithBias(w, random, p + "output.mlp.w3", A_INTERMEDIATE, V_HIDDEN);
      linearWithBias(w, random, p + "output.mlp.w2", V_HIDDEN, A_INTERMEDIATE);
      layerNorm(w, random, p + "output.mlp.ffn_ln", A_INTERMEDIATE);
    }
    return w;
  }

  private static void linear(SafetensorsWriter w, Random random, String name, int out, int in) {
    w.add(name, DType.F32, shape(out, in), gaussian(random, out * in, (float) (1 / Math.sqrt(in))));
  }

  private static void linearWithBias(SafetensorsWriter w, Random random, String prefix, int out, int in) {
    linear(w, random, prefix + ".weight", out, in);
    w.add(prefix + ".bias", DType.F32, shape(out), gaussian(random, out, 0.02f));
  }

  private static void norm(SafetensorsWriter w, Random random, String name, int size) {
    float[] values = gaussian(random, size, 0.1f);
    for (int i = 0; i < size; i++) {
      values[i] += 1f;
    }
    w.add(name, DType.F32, shape(size), values);
  }

  private static void layerNorm(SafetensorsWriter w, Random random, String prefix, int size) {
    norm(w, random, prefix + ".weight", size);
    w.add(prefix + ".bias", DType.F32, shape(size), gaussian(random, size, 0.02f));
  }

  private static float[] gaussian(Random random, int count, float std) {
    float[] values = new float[count];
    for (int i = 0; i < count; i++) {
      values[i] = (float) random.nextGaussian() * std;
    }
    return values;
  }

  private static long[] shape(long... dims) {
    return dims;
  }

  private static void deleteRecursively(Path dir) throws IOException {
    try (Stream<Path> paths = Files.walk(dir)) {
      for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) {
        Files.delete(p);
      }
    }
  }
}
