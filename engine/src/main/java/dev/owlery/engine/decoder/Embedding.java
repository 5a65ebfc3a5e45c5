package dev.owlery.engine.decoder;

import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.config.LlamaConfig;
import dev.owlery.engine.tensor.Matrix;

/** The token embedding table {@code model.embed_tokens.weight} [vocabSize, hiddenSize], replicated on every rank. */
public final class Embedding {

  static final String EMBED_TOKENS = "model.embed_tokens.weight";

  private final Matrix weight;

  private Embedding(Matrix weight) {
    this.weight = weight;
  }

  public static Embedding load(Checkpoint checkpoint, LlamaConfig config) {
    return new Embedding(checkpoint.tensor(EMBED_TOKENS, config.vocabSize(), config.hiddenSize()).asMatrix());
  }

  /** Writes the embedding row of {@code tokenId} (widened to float) at {@code out[outOffset]}. */
  public void lookup(int tokenId, float[] out, int outOffset) {
    if (tokenId < 0 || tokenId >= weight.rows()) {
      throw new IllegalArgumentException("token id %d is outside the vocabulary [0, %d)".formatted(tokenId, weight.rows()));
    }
    for (int c = 0; c < weight.cols(); c++) {
      out[outOffset + c] = weight.get(tokenId, c);
    }
  }
}
