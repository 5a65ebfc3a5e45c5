package dev.owlery.engine.kernel;

/**
 * The head layout of an attention call: query and output rows hold {@code numHeads} heads of
 * {@code headDim}; query head h reads kv head {@code h / (numHeads / numKvHeads)} (grouped-query
 * attention when {@code numKvHeads < numHeads}); scores are {@code scale * q . k}.
 */
public record AttentionShape(int numHeads, int numKvHeads, int headDim, float scale) {

  public AttentionShape {
    if (numHeads < 1 || numKvHeads < 1 || headDim < 1 || numHeads % numKvHeads != 0) {
      throw new IllegalArgumentException("attention needs numHeads and numKvHeads >= 1, numHeads a multiple of numKvHeads "
          + "and headDim >= 1. Given: numHeads=%d numKvHeads=%d headDim=%d".formatted(numHeads, numKvHeads, headDim));
    }
  }

  /** Query heads per kv head. */
  public int groupSize() {
    return numHeads / numKvHeads;
  }

  /** Floats in one query or output row. */
  public int rowWidth() {
    return numHeads * headDim;
  }

  /** Keys query {@code i} of {@code numQueries} sees among {@code numKeys}: positions {@code [0, visibleKeys)}. */
  static int visibleKeys(AttentionMask mask, int i, int numQueries, int numKeys) {
    return switch (mask) {
      case CAUSAL -> numKeys - numQueries + i + 1;
      case NONE -> numKeys;
    };
  }
}
