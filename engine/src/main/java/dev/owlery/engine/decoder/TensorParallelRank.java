package dev.owlery.engine.decoder;

/**
 * Rank {@code rank} of a tensor-parallel group of {@code size}: the per-rank arithmetic of a
 * slice, checked (a size that does not divide is an error, never a truncation).
 */
public record TensorParallelRank(int rank, int size) {

  public TensorParallelRank {
    if (size < 1 || rank < 0 || rank >= size) {
      throw new IllegalArgumentException("tensor-parallel rank %d of size %d is out of range".formatted(rank, size));
    }
  }

  /** {@code total / size}, failing with both numbers when {@code field} does not divide. */
  public int local(String field, int total) {
    if (total % size != 0) {
      throw new IllegalArgumentException("%s (%d) must be divisible by the tensor-parallel size (%d)"
          .formatted(field, total, size));
    }
    return total / size;
  }

  /** First index of this rank's share of {@code total} items. */
  public int start(String field, int total) {
    return rank * local(field, total);
  }
}
