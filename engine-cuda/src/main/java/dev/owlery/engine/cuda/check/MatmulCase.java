package dev.owlery.engine.cuda.check;

import dev.owlery.engine.cuda.forward.SplitGemm;
import dev.owlery.engine.cuda.ptx.PtxKernel;
import dev.owlery.engine.cuda.ptx.PtxKernels;
import dev.owlery.engine.cuda.ptx.PtxModule;
import dev.owlery.engine.cuda.runtime.Device;
import dev.owlery.engine.cuda.runtime.DevicePointer;
import dev.owlery.engine.kernel.ScalarKernels;
import dev.owlery.engine.tensor.DType;
import java.util.Locale;

/**
 * {@code out[t, r] = sum_c W[r, c] x[t, c]} by a GEMV or GEMM kernel against the engine's reference
 * {@link ScalarKernels#matmul} on the same weights (the lm_head's vocabulary slice is this product
 * on its rows); a GEMM in {@code splits} K splits ({@link SplitGemm}) when more than 1.
 */
record MatmulCase(PtxKernel entry, Weights weights, int numTokens, float[] x, int splits) implements KernelCase {

  /** float32's unit roundoff. */
  private static final double F32_U = 0x1p-24;

  MatmulCase(PtxKernel entry, Weights weights, int numTokens, float[] x) {
    this(entry, weights, numTokens, x, 1);
  }

  MatmulCase {
    if (splits > 1 && entry.module() != PtxModule.GEMM) {
      throw new IllegalArgumentException(entry.name() + " has no K splits");
    }
    if (entry.module() != PtxModule.GEMV && entry.module() != PtxModule.GEMM) {
      throw new IllegalArgumentException(entry.name() + " is not a matrix product");
    }
    if (!entry.name().endsWith("_" + weights.dtype().name().toLowerCase(Locale.ROOT))) {
      throw new IllegalArgumentException(entry.name() + " does not take " + weights.dtype() + " weights");
    }
  }

  @Override
  public String kernel() {
    return splits > 1 ? PtxKernels.GEMM_SPLIT_SUM.name() : entry.name(); // a split case checks the sum of the splits
  }

  @Override
  public String sizes() {
    return "rows=%d cols=%d tokens=%d dtype=%s%s".formatted(weights.rows(), weights.cols(), numTokens, weights.dtype(),
        splits > 1 ? " splits=%d of %s".formatted(splits, entry.name()) : "");
  }

  /**
   * A float32 sum of n products is within {@code n u sum |w x|} of the exact value (u = 2^-24), on the
   * CPU (sequential order) and on the device (another order) alike: they differ by at most twice that.
   * The GEMM also rounds x to W's 16-bit type first, one unit roundoff of that type per product
   * (2^-11 for F16, 2^-8 for BF16), and the tensor cores may truncate rather than round inside an
   * mma, which doubles the device's share: {@code (u16 + 3 n u) sum |w x|}.
   */
  @Override
  public Tolerance tolerance() {
    double accumulation = weights.cols() * F32_U;
    if (entry.module() == PtxModule.GEMV) {
      return new Tolerance(0, 2 * accumulation, "two float32 sums in different orders: 2 cols 2^-24 sum|w x|");
    }
    double inputRounding = weights.dtype() == DType.F16 ? 0x1p-11 : 0x1p-8;
    return new Tolerance(0, inputRounding + 3 * accumulation,
        "x rounded to %s (%s) and the mma's truncating sums: (u16 + 3 cols 2^-24) sum|w x|"
            .formatted(weights.dtype(), weights.dtype() == DType.F16 ? "2^-11" : "2^-8"));
  }

  @Override
  public Expected expected() {
    int rows = weights.rows();
    int cols = weights.cols();
    float[] out = new float[numTokens * rows];
    new ScalarKernels().matmul(weights.matrix(), x, 0, out, 0, numTokens);
    float[] scale = new float[out.length];
    var w = weights.matrix();
    for (int t = 0; t < numTokens; t++) {
      for (int r = 0; r < rows; r++) {
        double sum = 0;
        for (int c = 0; c < cols; c++) {
          sum += Math.abs(w.get(r, c) * x[t * cols + c]);
        }
        scale[t * rows + r] = (float) sum;
      }
    }
    return new Expected(out, scale);
  }

  @Override
  public float[] runOn(Device gpu) {
    int rows = weights.rows();
    DevicePointer out = gpu.allocate(4L * numTokens * rows);
    DevicePointer w = weights.upload(gpu);
    DevicePointer in = gpu.upload(x);
    int rowsPerBlock = entry.blockSize() / 32; // GEMV: one warp per output row
    if (entry == PtxKernels.GEMV8_F16 || entry == PtxKernels.GEMV8_BF16) {
      gpu.launch(entry, ceilDiv(rows, rowsPerBlock), ceilDiv(numTokens, PtxKernels.GEMV8_TOKENS), out, w, in, rows,
          weights.cols(), numTokens);
    } else if (entry.module() == PtxModule.GEMV) {
      gpu.launch(entry, ceilDiv(rows, rowsPerBlock), numTokens, out, w, in, rows, weights.cols());
    } else {
      DevicePointer scratch = splits > 1 ? gpu.allocate(4L * splits * numTokens * rows) : null;
      SplitGemm.launch(gpu, entry, out, w, in, rows, weights.cols(), numTokens, splits, scratch);
    }
    return gpu.downloadFloats(out, numTokens * rows);
  }

  static int ceilDiv(int a, int b) {
    return (a + b - 1) / b;
  }
}
