package dev.owlery.engine.kernel;

import dev.owlery.engine.tensor.Matrix;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The several-token (prefill) matmul kernels of {@link VectorMatmul}: a block of weight rows is
 * widened once into a float scratch row per weight row (in the activations' pair order), then
 * multiplied against tiles of {@value #TOKENS} tokens by {@value #ROWS} rows, so that every loaded
 * weight vector serves four tokens and every activation vector two rows, with eight independent
 * accumulators. The widening is paid once per block for all tokens instead of once per tile.
 * Measured by {@code owlery bench} (BenchCommand) against {@link ScalarKernels} in the same run.
 */
final class TileKernels {

  static final int TOKENS = 4;
  static final int ROWS = 2;
  /**
   * Rows widened side by side into a block ({@link #widen}). The 128-token matmul, 16,384 x 2,048
   * F16, one JVM per variant, two turns: 83.8-92.5 ms on 1 thread and 42.1-45.0 on 2 against
   * 84.5-93.4 and 45.2-47.2 one row at a time.
   */
  static final int WIDEN_ROWS = 4;
  private static final VectorSpecies<Float> F = VectorMatmul.F;
  private static final VectorSpecies<Integer> I = VectorMatmul.I;
  private static final int L = F.length();
  private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
  private static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(LE);
  private static final ValueLayout.OfShort I16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(LE);
  /** Widened weight rows of the block in progress, per thread; grows to the largest block, then reused. */
  private static final ThreadLocal<float[]> SCRATCH = ThreadLocal.withInitial(() -> new float[0]);

  private TileKernels() {}

  /**
   * {@code out[t, r] = w[r, :] . x[t, :]} for rows {@code [from, to)} (at most a few dozen) and
   * every token; {@code x} as for {@link VectorMatmul#rows}.
   */
  static void rowBlock(Matrix w, float[] x, int xOffset, float[] out, int outOffset, int numTokens, int from,
      int to, int head, float outScale) {
    int cols = w.cols();
    int rows = w.rows();
    int blockRows = to - from;
    int stride = widenedStride(cols);
    float[] scratch = SCRATCH.get();
    if (scratch.length < blockRows * stride) {
      scratch = new float[blockRows * stride];
      SCRATCH.set(scratch);
    }
    for (int i = 0; i < blockRows; i += WIDEN_ROWS) {
      widen(w, from + i, Math.min(WIDEN_ROWS, blockRows - i), head, 0, cols, scratch, i * stride, stride);
    }
    int tiledTokens = numTokens - numTokens % TOKENS;
    int pairedRows = blockRows - blockRows % ROWS;
    for (int t = 0; t < tiledTokens; t += TOKENS) {
      for (int i = 0; i < pairedRows; i += ROWS) {
        tile(scratch, i * stride, stride, x, xOffset + t * cols, cols, out, outOffset + t * rows + from + i, rows,
            outScale);
      }
    }
    for (int t = 0; t < numTokens; t++) {
      for (int i = t < tiledTokens ? pairedRows : 0; i < blockRows; i++) {
        out[outOffset + t * rows + from + i] = dot(scratch, i * stride, x, xOffset + t * cols, cols) * outScale;
      }
    }
  }

  /**
   * Floats from one widened weight row to the next, in this class's scratch and the panel kernels'
   * blocks: the columns rounded up to whole vectors, plus one vector, so that the rows of a tile
   * start in different L1 sets (at a multiple of 4 KiB, the twelve rows of a 12x1 panel tile and
   * its activations all fell into one 12-way set).
   */
  static int widenedStride(int cols) {
    return Math.ceilDiv(cols, L) * L + L;
  }

  /**
   * Columns {@code [k0, k1)} of rows {@code r} to {@code r + n - 1} widened to floats in the
   * activations' column order (pair order for 16-bit weights), column c of row {@code r + i} at
   * {@code dst[dstOffset + i * dstStride + c - k0]}. A range starts at 0 or at {@code head} plus a
   * multiple of 2L (16-bit weights, whose pair blocks it must not cut) and of 32 (Q8_0 and Q4_0
   * blocks). The n rows of 16-bit weights are read side by side, one vector of each in turn: n
   * streams from memory at once, where one row at a time read one 4 KiB page (a 2,048-column row)
   * after another. The other dtypes go row after row (Q8_0 rows side by side, block by block, in
   * {@link PanelKernels}' column chunks made 16-token calls 0.77x, 16,384 x 2,048, one thread, and
   * 128-token calls no faster).
   */
  static void widen(Matrix w, int r, int n, int head, int k0, int k1, float[] dst, int dstOffset, int dstStride) {
    MemorySegment data = w.data();
    long rowByte = w.rowByteOffset(r);
    long rowStride = w.rowStrideBytes();
    switch (w.dtype()) {
      case F32 -> {
        for (int i = 0; i < n; i++) {
          MemorySegment.copy(data, F32_LE, rowByte + i * rowStride + 4L * k0, dst, dstOffset + i * dstStride, k1 - k0);
        }
      }
      case F16 -> widenF16(data, rowByte, rowStride, n, w.cols(), head, k0, k1, dst, dstOffset, dstStride);
      case BF16 -> widenBF16(data, rowByte, rowStride, n, w.cols(), head, k0, k1, dst, dstOffset, dstStride);
      case Q8_0 -> widenQ8_0(data, rowByte, rowStride, n, k0, k1, dst, dstOffset - k0, dstStride);
      case Q4_0 -> {
        if (VectorMatmul.Q4_VECTORS) {
          widenQ4_0(data, rowByte, rowStride, n, k0, k1, dst, dstOffset - k0, dstStride);
        } else {
          for (int i = 0; i < n; i++) {
            for (int c = k0; c < k1; c++) {
              dst[dstOffset + i * dstStride + c - k0] = w.get(r + i, c);
            }
          }
        }
      }
      case I64, I32, U8 -> throw new AssertionError("Matrix rejects non-weight dtypes");
    }
  }

  /**
   * F16 rows widened as w * 2^-80, never a subnormal float, into pair order (head, then blocks of
   * 2L: evens, odds; tail); the arguments as for {@link #widen}, {@code rowByte} the first row's.
   */
  private static void widenF16(MemorySegment data, long rowByte, long rowStride, int n, int cols, int head, int k0,
      int k1, float[] dst, int dstOffset, int dstStride) {
    int pairedEnd = head + (cols - head) / (2 * L) * (2 * L);
    int vectorFrom = Math.max(k0, head);
    int vectorTo = Math.max(vectorFrom, Math.min(k1, pairedEnd));
    scalar16Columns(data, rowByte, rowStride, n, k0, Math.min(k1, head), true, dst, dstOffset - k0, dstStride);
    for (int c = vectorFrom; c + 2 * L <= vectorTo; c += 2 * L) {
      long b = rowByte + 2L * c;
      int d = dstOffset + c - k0;
      for (int i = 0; i < n; i++) {
        IntVector pairs = IntVector.fromMemorySegment(I, data, b + i * rowStride, LE);
        VectorMatmul.evenF16Normal(pairs).intoArray(dst, d + i * dstStride);
        VectorMatmul.oddF16Normal(pairs).intoArray(dst, d + i * dstStride + L);
      }
    }
    scalar16Columns(data, rowByte, rowStride, n, vectorTo, k1, true, dst, dstOffset - k0, dstStride);
  }

  /** BF16 rows widened into pair order, as {@link #widenF16}. */
  private static void widenBF16(MemorySegment data, long rowByte, long rowStride, int n, int cols, int head, int k0,
      int k1, float[] dst, int dstOffset, int dstStride) {
    int pairedEnd = head + (cols - head) / (2 * L) * (2 * L);
    int vectorFrom = Math.max(k0, head);
    int vectorTo = Math.max(vectorFrom, Math.min(k1, pairedEnd));
    scalar16Columns(data, rowByte, rowStride, n, k0, Math.min(k1, head), false, dst, dstOffset - k0, dstStride);
    for (int c = vectorFrom; c + 2 * L <= vectorTo; c += 2 * L) {
      long b = rowByte + 2L * c;
      int d = dstOffset + c - k0;
      for (int i = 0; i < n; i++) {
        IntVector pairs = IntVector.fromMemorySegment(I, data, b + i * rowStride, LE);
        VectorMatmul.evenBF16(pairs).intoArray(dst, d + i * dstStride);
        VectorMatmul.oddBF16(pairs).intoArray(dst, d + i * dstStride + L);
      }
    }
    scalar16Columns(data, rowByte, rowStride, n, vectorTo, k1, false, dst, dstOffset - k0, dstStride);
  }

  /**
   * Columns {@code [from, to)} of n 16-bit rows one by one (a head or tail outside the pair blocks),
   * column c of row i at {@code dst[base + i * dstStride + c]}.
   */
  private static void scalar16Columns(MemorySegment data, long rowByte, long rowStride, int n, int from, int to,
      boolean f16, float[] dst, int base, int dstStride) {
    for (int i = 0; i < n; i++) {
      for (int c = from; c < to; c++) {
        dst[base + i * dstStride + c] = VectorMatmul.scalar16(data, rowByte + i * rowStride + 2L * c, f16);
      }
    }
  }

  /**
   * Columns {@code [k0, k1)} (whole blocks) of n Q8_0 rows dequantized ({@code d * q}, exact in
   * fp32), one row after another; column c of row i at {@code dst[base + i * dstStride + c]}.
   */
  private static void widenQ8_0(MemorySegment data, long rowByte, long rowStride, int n, int k0, int k1, float[] dst,
      int base, int dstStride) {
    for (int i = 0; i < n; i++) {
      for (int c = k0; c < k1; c += 32) {
        long b = rowByte + i * rowStride + 34L * (c >> 5);
        int d = base + i * dstStride + c;
        float scale = Float.float16ToFloat(data.get(I16_LE, b));
        for (int k = 0; k < 32; k += VectorMatmul.B.length()) {
          ByteVector q = VectorMatmul.loadQ8(data, b + 2 + k);
          VectorMatmul.widenQ8Low(q).mul(scale).intoArray(dst, d + k);
          if (VectorMatmul.B.length() > L) {
            VectorMatmul.widenQ8High(q).mul(scale).intoArray(dst, d + k + L);
          }
        }
      }
    }
  }

  /**
   * Columns {@code [k0, k1)} (whole blocks) of n Q4_0 rows dequantized ({@code d * (q - 8)}, exact
   * in fp32), as {@link #widenQ8_0}.
   */
  private static void widenQ4_0(MemorySegment data, long rowByte, long rowStride, int n, int k0, int k1, float[] dst,
      int base, int dstStride) {
    for (int i = 0; i < n; i++) {
      for (int c = k0; c < k1; c += 32) {
        long b = rowByte + i * rowStride + 18L * (c >> 5);
        int d = base + i * dstStride + c;
        float scale = Float.float16ToFloat(data.get(I16_LE, b));
        for (int k = 0; k < 16; k += L) {
          // nibbles unpacked as in MatvecKernels.dotQ4_0 (written out for the same reason)
          ByteVector q = ByteVector.fromMemorySegment(VectorMatmul.B, data, b + 2 + k, LE);
          ((FloatVector) q.and((byte) 0x0f).sub((byte) 8).convertShape(VectorOperators.B2F, F, 0))
              .mul(scale).intoArray(dst, d + k);
          ((FloatVector) q.and((byte) 0xf0).lanewise(VectorOperators.XOR, (byte) 0x80)
              .convertShape(VectorOperators.B2F, F, 0)).mul(scale * 0.0625f).intoArray(dst, d + 16 + k);
        }
      }
    }
  }

  // hot: prefill, two widened weight rows against four activation rows; eight accumulators.
  private static void tile(float[] w, int w0, int wStride, float[] x, int x0, int cols, float[] out, int outIndex,
      int outStride, float outScale) {
    int w1 = w0 + wStride;
    int x1 = x0 + cols;
    int x2 = x1 + cols;
    int x3 = x2 + cols;
    FloatVector a00 = FloatVector.zero(F);
    FloatVector a01 = FloatVector.zero(F);
    FloatVector a02 = FloatVector.zero(F);
    FloatVector a03 = FloatVector.zero(F);
    FloatVector a10 = FloatVector.zero(F);
    FloatVector a11 = FloatVector.zero(F);
    FloatVector a12 = FloatVector.zero(F);
    FloatVector a13 = FloatVector.zero(F);
    int c = 0;
    for (; c + L <= cols; c += L) {
      FloatVector v0 = FloatVector.fromArray(F, w, w0 + c);
      FloatVector v1 = FloatVector.fromArray(F, w, w1 + c);
      FloatVector xv = FloatVector.fromArray(F, x, x0 + c);
      a00 = v0.fma(xv, a00);
      a10 = v1.fma(xv, a10);
      xv = FloatVector.fromArray(F, x, x1 + c);
      a01 = v0.fma(xv, a01);
      a11 = v1.fma(xv, a11);
      xv = FloatVector.fromArray(F, x, x2 + c);
      a02 = v0.fma(xv, a02);
      a12 = v1.fma(xv, a12);
      xv = FloatVector.fromArray(F, x, x3 + c);
      a03 = v0.fma(xv, a03);
      a13 = v1.fma(xv, a13);
    }
    float s00 = a00.reduceLanes(VectorOperators.ADD);
    float s01 = a01.reduceLanes(VectorOperators.ADD);
    float s02 = a02.reduceLanes(VectorOperators.ADD);
    float s03 = a03.reduceLanes(VectorOperators.ADD);
    float s10 = a10.reduceLanes(VectorOperators.ADD);
    float s11 = a11.reduceLanes(VectorOperators.ADD);
    float s12 = a12.reduceLanes(VectorOperators.ADD);
    float s13 = a13.reduceLanes(VectorOperators.ADD);
    for (; c < cols; c++) {
      float v0 = w[w0 + c];
      float v1 = w[w1 + c];
      s00 += v0 * x[x0 + c];
      s01 += v0 * x[x1 + c];
      s02 += v0 * x[x2 + c];
      s03 += v0 * x[x3 + c];
      s10 += v1 * x[x0 + c];
      s11 += v1 * x[x1 + c];
      s12 += v1 * x[x2 + c];
      s13 += v1 * x[x3 + c];
    }
    out[outIndex] = s00 * outScale;
    out[outIndex + 1] = s10 * outScale;
    out[outIndex + outStride] = s01 * outScale;
    out[outIndex + outStride + 1] = s11 * outScale;
    out[outIndex + 2 * outStride] = s02 * outScale;
    out[outIndex + 2 * outStride + 1] = s12 * outScale;
    out[outIndex + 3 * outStride] = s03 * outScale;
    out[outIndex + 3 * outStride + 1] = s13 * outScale;
  }

  /**
   * One widened weight row against one activation row, in four vector accumulators (two left a
   * dot product from L2 waiting on the FMA latency; also the panel kernels' last few tokens).
   */
  static float dot(float[] w, int w0, float[] x, int x0, int cols) {
    FloatVector acc0 = FloatVector.zero(F);
    FloatVector acc1 = FloatVector.zero(F);
    FloatVector acc2 = FloatVector.zero(F);
    FloatVector acc3 = FloatVector.zero(F);
    int c = 0;
    for (; c + 4 * L <= cols; c += 4 * L) {
      acc0 = FloatVector.fromArray(F, w, w0 + c).fma(FloatVector.fromArray(F, x, x0 + c), acc0);
      acc1 = FloatVector.fromArray(F, w, w0 + c + L).fma(FloatVector.fromArray(F, x, x0 + c + L), acc1);
      acc2 = FloatVector.fromArray(F, w, w0 + c + 2 * L).fma(FloatVector.fromArray(F, x, x0 + c + 2 * L), acc2);
      acc3 = FloatVector.fromArray(F, w, w0 + c + 3 * L).fma(FloatVector.fromArray(F, x, x0 + c + 3 * L), acc3);
    }
    for (; c + L <= cols; c += L) {
      acc0 = FloatVector.fromArray(F, w, w0 + c).fma(FloatVector.fromArray(F, x, x0 + c), acc0);
    }
    float sum = acc0.add(acc1).add(acc2.add(acc3)).reduceLanes(VectorOperators.ADD);
    for (; c < cols; c++) {
      sum += w[w0 + c] * x[x0 + c];
    }
    return sum;
  }
}
