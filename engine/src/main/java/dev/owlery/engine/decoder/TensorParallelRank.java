package dev.owlery.engine.decoder;

/**
 * Rank {@code rank} of a tensor-parallel group of {@code size}: the per-rank arithmetic of a
 * slice, checked (a split that cannot be made is an error naming both numbers, never a truncation).
 */
public record TensorParallelRank(int rank, int size) {

  public TensorParallelRank {
    if (size < 1 || rank < 0 || rank >= size) {
      throw new IllegalArgumentException("tensor-parallel rank %d of size %d is out of range".formatted(rank, size));
    }
  }

  /**
   * This rank's query heads: {@code numHeads / size} consecutive heads.
   *
   * @throws IllegalArgumentException when the size does not divide {@code numHeads}
   */
  public IndexRange heads(int numHeads) {
    if (numHeads % size != 0) {
      throw new IllegalArgumentException("num_attention_heads (%d) must be divisible by the tensor-parallel size (%d)"
          .formatted(numHeads, size));
    }
    int local = numHeads / size;
    return new IndexRange(rank * local, (rank + 1) * local);
  }

  /**
   * This rank's key/value heads, those its query heads ({@link #heads}) attend with: with at
   * least as many kv heads as ranks, {@code numKvHeads / size} of them; with fewer, the one kv head
   * of its query heads, replicated on the {@code size / numKvHeads} ranks sharing it (as vLLM's
   * {@code QKVParallelLinear} does).
   *
   * @throws IllegalArgumentException when the size does not divide {@code numHeads}, or neither
   *     divides nor is a multiple of {@code numKvHeads}
   */
  public IndexRange kvHeads(int numHeads, int numKvHeads) {
    heads(numHeads);
    if (numKvHeads >= size && numKvHeads % size == 0) {
      int local = numKvHeads / size;
      return new IndexRange(rank * local, (rank + 1) * local);
    }
    if (numKvHeads < size && size % numKvHeads == 0) {
      int kvHead = rank / (size / numKvHeads);
      return new IndexRange(kvHead, kvHead + 1);
    }
    throw new IllegalArgumentException(("num_key_value_heads (%d) and the tensor-parallel size (%d) must divide one "
        + "another: each rank holds num_key_value_heads / size kv heads, or one kv head replicated on "
        + "size / num_key_value_heads ranks").formatted(numKvHeads, size));
  }

  /**
   * This rank's share of {@code total} features split as evenly as they go (shares differ by at
   * most one): {@code [rank * total / size, (rank + 1) * total / size)}, rounded down. Row- and
   * column-parallel layers whose features are not heads (the MLP's intermediate features) need no
   * equal shares: the partial sums of the all-reduce add up the same.
   *
   * @throws IllegalArgumentException when there are fewer features than ranks
   */
  public IndexRange evenShare(String field, int total) {
    if (total < size) {
      throw new IllegalArgumentException("%s (%d) must be at least the tensor-parallel size (%d)"
          .formatted(field, total, size));
    }
    return new IndexRange((int) ((long) rank * total / size), (int) ((long) (rank + 1) * total / size));
  }

  /** This rank's vocabulary rows of lm_head, padded as {@link VocabSlice} says. */
  public VocabSlice vocab(int vocabSize) {
    return VocabSlice.of(this, vocabSize);
  }
}
