package dev.owlery.engine.decoder;

import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.kernel.Kernels;
import dev.owlery.engine.tensor.Matrix;

/**
 * {@code Y = X A^T} with the output features split over the ranks (Megatron column parallelism):
 * rank r holds rows {@code [r * out/N, (r + 1) * out/N)} of the {@code [out, in]} weight and
 * produces those output features; nothing is communicated. Used for q/k/v (split by head) and
 * gate/up.
 */
public final class ColumnParallelLinear {

  private final Matrix weight;

  private ColumnParallelLinear(Matrix weight) {
    this.weight = weight;
  }

  /** Loads this rank's rows of {@code name}, checked to be {@code [outFeatures, inFeatures]}. */
  public static ColumnParallelLinear load(
      Checkpoint checkpoint, String name, int outFeatures, int inFeatures, TensorParallelRank tp) {
    Matrix full = checkpoint.tensor(name, outFeatures, inFeatures).asMatrix();
    int local = tp.local(name + " output features", outFeatures);
    int start = tp.start(name + " output features", outFeatures);
    return new ColumnParallelLinear(full.rowSlice(start, start + local));
  }

  /** This rank's output features. */
  public int outFeatures() {
    return weight.rows();
  }

  public int inFeatures() {
    return weight.cols();
  }

  /** {@code out[t] = W_local x[t]} for {@code numTokens} rows. */
  public void forward(Kernels kernels, float[] x, int xOffset, float[] out, int outOffset, int numTokens) {
    kernels.matmul(weight, x, xOffset, out, outOffset, numTokens);
  }
}
