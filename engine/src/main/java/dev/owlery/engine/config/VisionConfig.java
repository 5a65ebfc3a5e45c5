package dev.owlery.engine.config;

/** The CLIP-style vision encoder's sizes ({@code visual_config.visual_model}, spec §2). */
public record VisionConfig(
    int hiddenSize,
    int intermediateSize,
    int numLayers,
    int numHeads,
    int numChannels,
    int imageSize,
    int patchSize,
    float layerNormEps) {

  public VisionConfig {
    LlamaConfig.requirePositive("visual_model.hidden_size", hiddenSize);
    LlamaConfig.requirePositive("visual_model.intermediate_size", intermediateSize);
    LlamaConfig.requirePositive("visual_model.num_hidden_layers", numLayers);
    LlamaConfig.requirePositive("visual_model.num_attention_heads", numHeads);
    LlamaConfig.requirePositive("visual_model.num_channels", numChannels);
    LlamaConfig.requirePositive("visual_model.image_size", imageSize);
    LlamaConfig.requirePositive("visual_model.patch_size", patchSize);
    if (hiddenSize % numHeads != 0) {
      throw new IllegalArgumentException(
          "visual_model.hidden_size (%d) must be a multiple of num_attention_heads (%d)".formatted(hiddenSize, numHeads));
    }
    if (imageSize % patchSize != 0) {
      throw new IllegalArgumentException(
          "visual_model.image_size (%d) must be a multiple of patch_size (%d)".formatted(imageSize, patchSize));
    }
  }

  public int headDim() {
    return hiddenSize / numHeads;
  }

  /** Patches per side: image_size / patch_size. */
  public int gridSize() {
    return imageSize / patchSize;
  }

  public int numPatches() {
    return gridSize() * gridSize();
  }

  /** Tokens out of the encoder: one CLS plus one per patch. */
  public int numTokens() {
    return 1 + numPatches();
  }
}
