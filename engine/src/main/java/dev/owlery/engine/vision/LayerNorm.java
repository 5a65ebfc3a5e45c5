package dev.owlery.engine.vision;

import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.kernel.Kernels;
import dev.owlery.engine.tensor.Matrix;

/**
 * A PyTorch {@code nn.LayerNorm} with weight and bias, applied row by row.
 *
 * @param eps chosen by the caller per spec §8's epsilon table (some norms ignore the config)
 */
record LayerNorm(Matrix weight, Matrix bias, float eps) {

  /** Loads {@code prefix.weight} and {@code prefix.bias}, both checked to be {@code [size]}. */
  static LayerNorm load(Checkpoint checkpoint, String prefix, int size, float eps) {
    return new LayerNorm(
        checkpoint.tensor(prefix + ".weight", size).asMatrix(),
        checkpoint.tensor(prefix + ".bias", size).asMatrix(),
        eps);
  }

  int size() {
    return weight.cols();
  }

  /** Normalises {@code numTokens} rows of {@link #size()} floats from x into out (must not alias). */
  void forward(Kernels kernels, float[] x, int xOffset, float[] out, int outOffset, int numTokens) {
    kernels.layerNorm(x, xOffset, weight, bias, eps, out, outOffset, numTokens, size());
  }
}
