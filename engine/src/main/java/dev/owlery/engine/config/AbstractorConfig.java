package dev.owlery.engine.config;

/** The visual abstractor's sizes ({@code visual_config.visual_abstractor}, spec §3). */
public record AbstractorConfig(
    int numQueries,
    int hiddenSize,
    int encoderHiddenSize,
    int numLayers,
    int numHeads,
    int intermediateSize,
    float layerNormEps,
    int gridSize) {

  public AbstractorConfig {
    LlamaConfig.requirePositive("visual_abstractor.num_learnable_queries", numQueries);
    LlamaConfig.requirePositive("visual_abstractor.hidden_size", hiddenSize);
    LlamaConfig.requirePositive("visual_abstractor.encoder_hidden_size", encoderHiddenSize);
    LlamaConfig.requirePositive("visual_abstractor.num_hidden_layers", numLayers);
    LlamaConfig.requirePositive("visual_abstractor.num_attention_heads", numHeads);
    LlamaConfig.requirePositive("visual_abstractor.intermediate_size", intermediateSize);
    LlamaConfig.requirePositive("visual_abstractor.grid_size", gridSize);
    if (hiddenSize % numHeads != 0) {
      throw new IllegalArgumentException(
          "visual_abstractor.hidden_size (%d) must be a multiple of num_attention_heads (%d)"
              .formatted(hiddenSize, numHeads));
    }
  }

  public int headDim() {
    return hiddenSize / numHeads;
  }
}
