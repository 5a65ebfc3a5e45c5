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

  /** Checks the sizes of one call: at least one key, and under a causal mask no more queries than keys. */
  public static void checkCall(AttentionMask mask, int numQueries, int numKeys) {
    if (numQueries < 0 || numKeys < 1 || (mask == AttentionMask.CAUSAL && numQueries > numKeys)) {
      throw new IllegalArgumentException("attention needs numQueries >= 0, numKeys >= 1 and, with a causal mask, "
          + "numQueries <= numKeys. Given: numQueries=%d numKeys=%d mask=%s".formatted(numQueries, numKeys, mask));
    }
  }

  /** Keys query {@code i} of {@code numQueries} sees among {@code numKeys}: positions {@code [0, visibleKeys)}. */
  public static int visibleKeys(AttentionMask mask, int i, int numQueries, int numKeys) {
    return switch (mask) {
      case CAUSAL -> numKeys - numQueries + i + 1;
      case NONE -> numKeys;
    };
  }
}
