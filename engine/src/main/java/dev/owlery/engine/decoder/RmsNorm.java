package dev.owlery.engine.decoder;

import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.kernel.Kernels;
import dev.owlery.engine.tensor.DType;
import dev.owlery.engine.tensor.Matrix;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** LLaMA RMSNorm (spec §4): {@code w * x / sqrt(mean(x^2) + eps)}, weight only, replicated on every rank. */
public final class RmsNorm {

  private final Matrix weight;
  private final float eps;
  private final int hiddenSize;

  public RmsNorm(Matrix weight, float eps) {
    this.weight = float32(weight);
    this.eps = eps;
    this.hiddenSize = weight.cols();
  }

  /** Loads {@code name}, checked to be {@code [hiddenSize]}. */
  public static RmsNorm load(Checkpoint checkpoint, String name, int hiddenSize, float eps) {
    return new RmsNorm(checkpoint.tensor(name, hiddenSize).asMatrix(), eps); // a 1 x hiddenSize view
  }

  /**
   * The weight row as float32 on the heap (exact for every weight dtype): the vector kernels then
   * read it as vectors, where a 16-bit row cost a conversion per element and row (a 512-token
   * prefill normalises 2 x 512 rows per layer).
   */
  private static Matrix float32(Matrix weight) {
    // native memory: the Vector API reads heap segments only when they wrap a byte[]
    MemorySegment row = Arena.ofAuto().allocate(4L * weight.cols(), 64);
    for (int c = 0; c < weight.cols(); c++) {
      row.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN), c, weight.get(0, c));
    }
    return new Matrix(weight.name(), row, DType.F32, 1, weight.cols(), weight.cols(), 0);
  }

  /** Normalises one row of {@code hiddenSize} floats. */
  public void forward(Kernels kernels, float[] x, int xOffset, float[] out, int outOffset) {
    kernels.rmsNorm(x, xOffset, weight, eps, out, outOffset, hiddenSize);
  }
}
