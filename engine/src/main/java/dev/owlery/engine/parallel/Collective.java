package dev.owlery.engine.parallel;

/**
 * The all-reduce a tensor-parallel rank calls twice per decoder layer (after o_proj and after
 * down_proj). Every rank of the group must make the same calls in the same order with the same
 * lengths; each call returns once every rank's contribution is summed into every rank's buffer,
 * and all ranks receive bit-identical sums. One thread per rank calls it.
 */
public interface Collective {

  /** This member's rank in {@code [0, size())}. */
  int rank();

  /** Number of ranks in the group (the tensor-parallel size N). */
  int size();

  /**
   * Replaces {@code x[offset, offset + length)} by its element-wise sum over all ranks.
   *
   * @throws IllegalStateException when the group is broken (a rank failed or timed out)
   */
  void allReduceSum(float[] x, int offset, int length);

  /** The group of one rank: all-reduce is the identity. */
  static Collective single() {
    return SingleRank.INSTANCE;
  }

  /** The trivial group of size 1. */
  enum SingleRank implements Collective {
    INSTANCE;

    @Override
    public int rank() {
      return 0;
    }

    @Override
    public int size() {
      return 1;
    }

    @Override
    public void allReduceSum(float[] x, int offset, int length) {
      // one rank: its partial sum is the total
    }
  }
}
