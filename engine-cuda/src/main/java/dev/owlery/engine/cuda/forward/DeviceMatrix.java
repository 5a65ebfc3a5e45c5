package dev.owlery.engine.cuda.forward;

import dev.owlery.engine.cuda.ptx.PtxKernel;
import dev.owlery.engine.cuda.ptx.PtxKernels;
import dev.owlery.engine.cuda.runtime.Device;
import dev.owlery.engine.cuda.runtime.DevicePointer;
import dev.owlery.engine.tensor.DType;
import dev.owlery.engine.tensor.Matrix;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * A weight matrix in device memory, row-major {@code [rows, cols]}, contiguous, in the dtype the
 * host held it in (F32, F16 or BF16), and the product {@code out[t] = W x[t]} that picks the kernel
 * for the number of tokens: {@code gemv_*} for one, {@code gemv8_*} for a few, the tensor-core
 * {@code gemm64_*} from {@value #GEMM64_MIN_TOKENS} and {@code gemm_*} from {@value #GEMM_MIN_TOKENS}
 * (F32 weights, the fixtures', always {@code gemv_f32}).
 */
record DeviceMatrix(String name, DevicePointer data, DType dtype, int rows, int cols) {

  /**
   * Tokens from which the 64 x 64-tile GEMM serves a product, below it gemv8: bound by reading W at
   * these sizes, a tile mostly empty of tokens costs little. The GPU check's kernel timings on an
   * H200 (11,008 x 4,096, F16; 2026-12-04): gemv8 71 / 107 / 207 us at 4 / 8 / 16 tokens, gemm64 99 /
   * 99 / 95 us.
   */
  static final int GEMM64_MIN_TOKENS = 8;
  /**
   * Tokens from which the 128 x 128-tile GEMM serves a product (prefill). Same timings: gemm64 86 /
   * 105 / 201 / 383 us at 64 / 128 / 256 / 512 tokens, gemm 129 / 115 / 171 / 275 us.
   */
  static final int GEMM_MIN_TOKENS = 256;

  /** Copies {@code view} (a slice of a checkpoint tensor, possibly strided) into a new contiguous device buffer. */
  static DeviceMatrix upload(Device device, Matrix view) {
    DType dtype = view.dtype();
    switch (dtype) {
      case F32, F16, BF16 -> { }
      default -> throw new IllegalArgumentException(("weight '%s' is %s: the device forward takes F32, F16 or BF16 "
          + "weights (--weight-format f16 or bf16 converts at load)").formatted(view.name(), dtype));
    }
    int rowBytes = Math.toIntExact(dtype.bytesOf(view.cols()));
    byte[] bytes = new byte[Math.multiplyExact(rowBytes, view.rows())];
    for (int r = 0; r < view.rows(); r++) {
      MemorySegment.copy(view.data(), ValueLayout.JAVA_BYTE, view.rowByteOffset(r), bytes, r * rowBytes, rowBytes);
    }
    DevicePointer data = device.allocate(bytes.length);
    device.copyToDevice(data, bytes, 0, bytes.length);
    return new DeviceMatrix(view.name(), data, dtype, view.rows(), view.cols());
  }

  /** Queues {@code out[t, r] = sum_c W[r, c] x[t, c]} for {@code numTokens} float32 rows of x, never split. */
  void multiply(Device device, DevicePointer x, DevicePointer out, int numTokens) {
    multiply(device, x, out, numTokens, null);
  }

  /**
   * As {@link #multiply(Device, DevicePointer, DevicePointer, int)}, a tensor-core product cut along K
   * ({@link SplitGemm}) when it has too few tiles, its partials in {@code scratch} ({@link
   * SplitGemm#SCRATCH_FLOATS} floats; null for none).
   */
  void multiply(Device device, DevicePointer x, DevicePointer out, int numTokens, DevicePointer scratch) {
    int warpRows = PtxKernels.GEMV_F32.blockSize() / 32; // a warp per output row
    if (dtype == DType.F32) {
      device.launch(PtxKernels.GEMV_F32, ceilDiv(rows, warpRows), numTokens, out, data, x, rows, cols);
    } else if (numTokens == 1) {
      device.launch(dtype == DType.F16 ? PtxKernels.GEMV_F16 : PtxKernels.GEMV_BF16, ceilDiv(rows, warpRows), 1, out,
          data, x, rows, cols);
    } else if (numTokens < GEMM64_MIN_TOKENS) {
      PtxKernel kernel = dtype == DType.F16 ? PtxKernels.GEMV8_F16 : PtxKernels.GEMV8_BF16;
      device.launch(kernel, ceilDiv(rows, warpRows), ceilDiv(numTokens, PtxKernels.GEMV8_TOKENS), out, data, x, rows,
          cols, numTokens);
    } else {
      PtxKernel kernel = numTokens < GEMM_MIN_TOKENS
          ? (dtype == DType.F16 ? PtxKernels.GEMM64_F16 : PtxKernels.GEMM64_BF16)
          : (dtype == DType.F16 ? PtxKernels.GEMM_F16 : PtxKernels.GEMM_BF16);
      int splits = scratch == null ? 1 : SplitGemm.splits(kernel, rows, cols, numTokens, SplitGemm.SCRATCH_FLOATS);
      SplitGemm.launch(device, kernel, out, data, x, rows, cols, numTokens, splits, scratch);
    }
  }

  static int ceilDiv(long a, int b) {
    return Math.toIntExact((a + b - 1) / b);
  }
}
