package dev.owlery.engine.config;

/**
 * The LLaMA-2 decoder's sizes (config.json top level, spec §4 and §8), every default resolved.
 *
 * @param modalityAdaptive true for mPLUG-Owl2 checkpoints (k/v projections and the two per-layer
 *     norms have a text and a visual copy, {@code multiway.0/1}); false for plain LLaMA
 */
public record LlamaConfig(
    int vocabSize,
    int hiddenSize,
    int intermediateSize,
    int numLayers,
    int numHeads,
    int numKvHeads,
    int headDim,
    int maxPositions,
    float rmsNormEps,
    float ropeTheta,
    boolean tieWordEmbeddings,
    int bosTokenId,
    int eosTokenId,
    boolean modalityAdaptive) {

  public LlamaConfig {
    requirePositive("vocab_size", vocabSize);
    requirePositive("hidden_size", hiddenSize);
    requirePositive("intermediate_size", intermediateSize);
    requirePositive("num_hidden_layers", numLayers);
    requirePositive("num_attention_heads", numHeads);
    requirePositive("num_key_value_heads", numKvHeads);
    requirePositive("head_dim", headDim);
    requirePositive("max_position_embeddings", maxPositions);
    if (numHeads % numKvHeads != 0) {
      throw new IllegalArgumentException(
          "num_attention_heads (%d) must be a multiple of num_key_value_heads (%d)".formatted(numHeads, numKvHeads));
    }
    if (headDim % 2 != 0) {
      throw new IllegalArgumentException("head_dim must be even for RoPE, got " + headDim);
    }
    if (!(rmsNormEps > 0)) {
      throw new IllegalArgumentException("rms_norm_eps must be > 0, got " + rmsNormEps);
    }
    if (!(ropeTheta > 0)) {
      throw new IllegalArgumentException("rope_theta must be > 0, got " + ropeTheta);
    }
  }

  /** Width of one token's keys (or values) over all kv heads. */
  public int kvSize() {
    return numKvHeads * headDim;
  }

  /** Width of one token's queries over all heads. */
  public int qSize() {
    return numHeads * headDim;
  }

  /** Number of modality copies of the MAM weights: 2 for mPLUG-Owl2, 1 for plain LLaMA. */
  public int numModalities() {
    return modalityAdaptive ? 2 : 1;
  }

  static void requirePositive(String field, int value) {
    if (value <= 0) {
      throw new IllegalArgumentException("config field '%s' must be > 0, got %d".formatted(field, value));
    }
  }
}
