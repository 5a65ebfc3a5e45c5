package dev.owlery.engine.vision;

import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.kernel.Kernels;
import dev.owlery.engine.tensor.Matrix;

/** A PyTorch {@code nn.Linear} with bias: {@code y = W x + b}, weight {@code [outFeatures, inFeatures]}. */
record Linear(Matrix weight, Matrix bias) {

  /** Loads {@code prefix.weight} {@code [outFeatures, inFeatures]} and {@code prefix.bias} {@code [outFeatures]}. */
  static Linear load(Checkpoint checkpoint, String prefix, int outFeatures, int inFeatures) {
    return new Linear(
        checkpoint.weight(checkpoint.tensor(prefix + ".weight", outFeatures, inFeatures).asMatrix()),
        checkpoint.tensor(prefix + ".bias", outFeatures).asMatrix());
  }

  int inFeatures() {
    return weight.cols();
  }

  int outFeatures() {
    return weight.rows();
  }

  /** {@code numTokens} rows of inFeatures from x to rows of outFeatures in out (must not alias). */
  void forward(Kernels kernels, float[] x, int xOffset, float[] out, int outOffset, int numTokens) {
    kernels.matmul(weight, x, xOffset, out, outOffset, numTokens);
    kernels.addBias(out, outOffset, bias, numTokens, outFeatures());
  }
}
