package dev.owlery.engine.config;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A model directory's {@code config.json}: a plain LLaMA ({@code model_type} "llama") or an
 * mPLUG-Owl2 ({@code model_type} "mplug_owl2", spec §8) with its vision tower and abstractor.
 *
 * @param vision null for a plain LLaMA checkpoint
 * @param abstractor null for a plain LLaMA checkpoint
 */
public record ModelConfig(String modelType, LlamaConfig text, VisionConfig vision, AbstractorConfig abstractor) {

  public static final String MPLUG_OWL2 = "mplug_owl2";
  public static final String LLAMA = "llama";

  /** True when the model takes images (mPLUG-Owl2). */
  public boolean multimodal() {
    return vision != null;
  }

  /**
   * Reads and validates {@code dir/config.json}; a missing directory or a directory without
   * config.json is said in those words.
   */
  public static ModelConfig load(Path dir) {
    if (!Files.isDirectory(dir)) {
      throw new IllegalArgumentException(Files.exists(dir)
          ? "%s is a file; give the model directory that holds config.json".formatted(dir)
          : "no such directory: " + dir);
    }
    Path file = dir.resolve("config.json");
    if (!Files.isRegularFile(file)) {
      throw new IllegalArgumentException("no config.json in %s: is this a model directory?".formatted(dir));
    }
    return JsonConfigFile.read(file, ModelConfig::parse);
  }

  /** Parses a config.json tree; messages name the offending field. */
  public static ModelConfig parse(JsonNode root) {
    if (root == null || !root.isObject()) {
      throw new IllegalArgumentException("config is not a JSON object");
    }
    String modelType = root.path("model_type").asText("");
    boolean owl = switch (modelType) {
      case MPLUG_OWL2 -> true;
      case LLAMA -> false;
      default -> throw new IllegalArgumentException(
          "model_type \"%s\" is not supported (expected \"mplug_owl2\" or \"llama\")".formatted(modelType));
    };
    JsonNode ropeScaling = root.get("rope_scaling");
    if (ropeScaling != null && !ropeScaling.isNull()) {
      throw new IllegalArgumentException("rope_scaling " + ropeScaling + " is not supported (only null)");
    }
    String act = root.path("hidden_act").asText("silu");
    if (!act.equals("silu")) {
      throw new IllegalArgumentException("hidden_act \"%s\" is not supported (only \"silu\")".formatted(act));
    }
    if (root.path("attention_bias").asBoolean(false)) {
      throw new IllegalArgumentException("attention_bias true is not supported");
    }
    if (root.path("mlp_bias").asBoolean(false)) {
      throw new IllegalArgumentException("mlp_bias true is not supported");
    }
    int hidden = requiredInt(root, "hidden_size");
    int heads = requiredInt(root, "num_attention_heads");
    int kvHeads = root.has("num_key_value_heads") && !root.get("num_key_value_heads").isNull()
        ? requiredInt(root, "num_key_value_heads") : heads;
    boolean hasHeadDim = root.has("head_dim") && !root.get("head_dim").isNull();
    int headDim = hasHeadDim ? requiredInt(root, "head_dim") : hidden / heads;
    if (!hasHeadDim && hidden % heads != 0) {
      throw new IllegalArgumentException(
          "hidden_size (%d) must be a multiple of num_attention_heads (%d)".formatted(hidden, heads));
    }
    if (owl && kvHeads != heads) {
      throw new IllegalArgumentException(
          "num_key_value_heads (%d) != num_attention_heads (%d): the official mPLUG-Owl2 code cannot run "
              .formatted(kvHeads, heads) + "grouped-query attention with the Modality-Adaptive Module (spec §4)");
    }
    LlamaConfig text = new LlamaConfig(
        requiredInt(root, "vocab_size"),
        hidden,
        requiredInt(root, "intermediate_size"),
        requiredInt(root, "num_hidden_layers"),
        heads,
        kvHeads,
        headDim,
        root.has("max_position_embeddings") ? requiredInt(root, "max_position_embeddings") : 2048,
        // spec §4: read from the file; 1e-6 is only the official code default when absent.
        (float) root.path("rms_norm_eps").asDouble(1e-6),
        (float) root.path("rope_theta").asDouble(10000.0),
        // LlamaConfig's (and so MPLUGOwl2Config's) default is false
        root.path("tie_word_embeddings").asBoolean(false),
        root.path("bos_token_id").asInt(1),
        firstInt(root.get("eos_token_id"), 2),
        owl);
    if (!owl) {
      return new ModelConfig(modelType, text, null, null);
    }
    JsonNode visual = root.path("visual_config");
    JsonNode vm = visual.path("visual_model");
    JsonNode va = visual.path("visual_abstractor");
    if (!vm.isObject() || !va.isObject()) {
      throw new IllegalArgumentException(
          "an mplug_owl2 config needs visual_config.visual_model and visual_config.visual_abstractor");
    }
    String visionAct = vm.path("hidden_act").asText("quick_gelu");
    if (!visionAct.equals("quick_gelu")) {
      throw new IllegalArgumentException(
          "visual_model.hidden_act \"%s\" is not supported (only \"quick_gelu\")".formatted(visionAct));
    }
    if (!vm.path("use_cls_token").asBoolean(true)) {
      throw new IllegalArgumentException("visual_model.use_cls_token false is not supported (spec §8)");
    }
    if (!vm.path("use_post_layernorm").asBoolean(true)) {
      throw new IllegalArgumentException("visual_model.use_post_layernorm false is not supported (spec §2)");
    }
    VisionConfig vision = new VisionConfig(
        intOr(vm, "hidden_size", 1024, "visual_model."),
        intOr(vm, "intermediate_size", 4096, "visual_model."),
        intOr(vm, "num_hidden_layers", 24, "visual_model."),
        intOr(vm, "num_attention_heads", 16, "visual_model."),
        intOr(vm, "num_channels", 3, "visual_model."),
        intOr(vm, "image_size", 448, "visual_model."),
        intOr(vm, "patch_size", 14, "visual_model."),
        (float) vm.path("layer_norm_eps").asDouble(1e-6));
    if (vision.numChannels() != 3) {
      throw new IllegalArgumentException("visual_model.num_channels must be 3 (RGB), got " + vision.numChannels());
    }
    if (va.path("add_v2t_pos_emb").asBoolean(false)) {
      throw new IllegalArgumentException("visual_abstractor.add_v2t_pos_emb true is not supported (spec §3)");
    }
    if (!va.path("use_cls_token").asBoolean(true)) {
      throw new IllegalArgumentException("visual_abstractor.use_cls_token false is not supported (spec §8)");
    }
    int gridSize = intOr(va, "grid_size", 32, "visual_abstractor."); // spec §8: null -> 32
    AbstractorConfig abstractor = new AbstractorConfig(
        intOr(va, "num_learnable_queries", 64, "visual_abstractor."),
        intOr(va, "hidden_size", 1024, "visual_abstractor."),
        intOr(va, "encoder_hidden_size", 1024, "visual_abstractor."),
        intOr(va, "num_hidden_layers", 6, "visual_abstractor."),
        intOr(va, "num_attention_heads", 16, "visual_abstractor."),
        intOr(va, "intermediate_size", 2816, "visual_abstractor."),
        (float) va.path("layer_norm_eps").asDouble(1e-6),
        gridSize);
    if (abstractor.encoderHiddenSize() != vision.hiddenSize() || abstractor.encoderHiddenSize() != abstractor.hiddenSize()) {
      throw new IllegalArgumentException(
          "visual_abstractor.encoder_hidden_size (%d) must equal visual_model.hidden_size (%d) and visual_abstractor.hidden_size (%d) (spec §3)"
              .formatted(abstractor.encoderHiddenSize(), vision.hiddenSize(), abstractor.hiddenSize()));
    }
    if (abstractor.gridSize() != vision.gridSize()) {
      throw new IllegalArgumentException(
          "visual_abstractor.grid_size (%d) must equal image_size / patch_size (%d) (spec §3)"
              .formatted(abstractor.gridSize(), vision.gridSize()));
    }
    return new ModelConfig(modelType, text, vision, abstractor);
  }

  private static int requiredInt(JsonNode node, String field) {
    JsonNode v = node.get(field);
    if (v == null || v.isNull()) {
      throw new IllegalArgumentException("config field '%s' is missing".formatted(field));
    }
    if (!v.isIntegralNumber() || !v.canConvertToInt()) {
      throw new IllegalArgumentException("config field '%s' must be an integer, got %s".formatted(field, v));
    }
    return v.intValue();
  }

  private static int intOr(JsonNode node, String field, int fallback, String prefix) {
    JsonNode v = node.get(field);
    if (v == null || v.isNull()) {
      return fallback;
    }
    if (!v.isIntegralNumber() || !v.canConvertToInt()) {
      throw new IllegalArgumentException("config field '%s%s' must be an integer, got %s".formatted(prefix, field, v));
    }
    return v.intValue();
  }

  private static int firstInt(JsonNode v, int fallback) {
    if (v == null || v.isNull()) {
      return fallback;
    }
    if (v.isArray()) {
      return v.size() == 0 ? fallback : v.get(0).asInt();
    }
    return v.asInt();
  }
}
