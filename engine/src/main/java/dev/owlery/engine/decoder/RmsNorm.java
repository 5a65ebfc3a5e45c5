package dev.owlery.engine.decoder;

import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.kernel.Kernels;
import dev.owlery.engine.tensor.Matrix;

/** LLaMA RMSNorm (spec §4): {@code w * x / sqrt(mean(x^2) + eps)}, weight only, replicated on every rank. */
public final class RmsNorm {

  private final Matrix weight;
  private final float eps;
  private final int hiddenSize;

  public RmsNorm(Matrix weight, float eps) {
    this.weight = weight;
    this.eps = eps;
    this.hiddenSize = weight.cols();
  }

  /** Loads {@code name}, checked to be {@code [hiddenSize]}. */
  public static RmsNorm load(Checkpoint checkpoint, String name, int hiddenSize, float eps) {
    return new RmsNorm(checkpoint.tensor(name, hiddenSize).asMatrix(), eps); // a 1 x hiddenSize view
  }

  /** Normalises one row of {@code hiddenSize} floats. */
  public void forward(Kernels kernels, float[] x, int xOffset, float[] out, int outOffset) {
    kernels.rmsNorm(x, xOffset, weight, eps, out, outOffset, hiddenSize);
  }
}
