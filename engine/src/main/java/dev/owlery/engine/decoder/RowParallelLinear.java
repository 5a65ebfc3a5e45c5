package dev.owlery.engine.decoder;

import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.kernel.Kernels;
import dev.owlery.engine.parallel.Collective;
import dev.owlery.engine.tensor.Matrix;

/**
 * {@code Y = X A^T} with the input features split over the ranks (Megatron row parallelism): each
 * rank holds a range of columns of the {@code [out, in]} weight (a strided view read in place, or
 * copies in column blocks: {@link BlockedWeight}), multiplies its share of the input and
 * all-reduces the partial sums, so every rank ends with the full output. Used for o_proj and
 * down_proj: one all-reduce each.
 */
public final class RowParallelLinear {

  /** This rank's columns of the weight. */
  private final BlockedWeight weight;
  private final Collective collective;

  private RowParallelLinear(BlockedWeight weight, Collective collective) {
    this.weight = weight;
    this.collective = collective;
  }

  /** Loads the input features {@code columns} of {@code name}, checked to be {@code [outFeatures, inFeatures]}. */
  public static RowParallelLinear load(Checkpoint checkpoint, String name, int outFeatures, int inFeatures,
      IndexRange columns, Collective collective) {
    Matrix full = checkpoint.tensor(name, outFeatures, inFeatures).asMatrix();
    return new RowParallelLinear(BlockedWeight.load(checkpoint, full.colSlice(columns.start(), columns.end())),
        collective);
  }

  /** This rank's input features. */
  public int inFeatures() {
    return weight.cols();
  }

  public int outFeatures() {
    return weight.rows();
  }

  /** Column blocks the weight is stored in. */
  int numBlocks() {
    return weight.numBlocks();
  }

  /** {@code out[t] = sum over ranks of W_local x_local[t]}: the local product, then one all-reduce. */
  public void forward(Kernels kernels, float[] x, int xOffset, float[] out, int outOffset, int numTokens) {
    weight.matmul(kernels, x, xOffset, out, outOffset, numTokens);
    collective.allReduceSum(out, outOffset, numTokens * outFeatures());
  }
}
