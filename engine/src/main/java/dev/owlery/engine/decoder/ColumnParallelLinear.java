package dev.owlery.engine.decoder;

import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.kernel.Kernels;
import dev.owlery.engine.tensor.Matrix;

/**
 * {@code Y = X A^T} with the output features split over the ranks (Megatron column parallelism):
 * each rank holds a range of rows of the {@code [out, in]} weight ({@link TensorParallelRank} says
 * which) and produces those output features; nothing is communicated. Used for q/k/v (split by
 * head; k/v heads replicated when there are fewer than ranks) and gate/up. Rows longer than
 * {@link BlockedWeight#maxBlockColumns} (the 7B's 4,096 in 16 bits) are stored in column blocks
 * where the checkpoint copies its weights.
 */
public final class ColumnParallelLinear {

  /** This rank's rows of the weight. */
  private final BlockedWeight weight;

  private ColumnParallelLinear(BlockedWeight weight) {
    this.weight = weight;
  }

  /** Loads the output features {@code rows} of {@code name}, checked to be {@code [outFeatures, inFeatures]}. */
  public static ColumnParallelLinear load(
      Checkpoint checkpoint, String name, int outFeatures, int inFeatures, IndexRange rows) {
    Matrix full = checkpoint.tensor(name, outFeatures, inFeatures).asMatrix();
    return new ColumnParallelLinear(BlockedWeight.load(checkpoint, full.rowSlice(rows.start(), rows.end())));
  }

  /** This rank's output features. */
  public int outFeatures() {
    return weight.rows();
  }

  public int inFeatures() {
    return weight.cols();
  }

  /** Column blocks the weight is stored in. */
  int numBlocks() {
    return weight.numBlocks();
  }

  /** {@code out[t] = W_local x[t]} for {@code numTokens} rows. */
  public void forward(Kernels kernels, float[] x, int xOffset, float[] out, int outOffset, int numTokens) {
    weight.matmul(kernels, x, xOffset, out, outOffset, numTokens);
  }
}
