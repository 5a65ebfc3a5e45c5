package dev.owlery.engine.kernel;

import dev.owlery.engine.tensor.Matrix;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * The matmul inner loops over weights read in place from their segment, one method per weight
 * dtype: a scalar head up to the load alignment, a vector body with several accumulators, and a
 * scalar tail. Rows are processed against tiles of {@value #TOKEN_TILE} tokens so that prefill
 * widens each weight vector once for four tokens. Measured by {@code owlery bench} (BenchCommand),
 * which reports GFLOP/s as a ratio to {@link ScalarKernels} in the same run.
 *
 * <p>F16 widening uses the exponent-rebias trick: the 15 magnitude bits shifted to float position
 * and multiplied by 2^112 give the exact value of every finite half (subnormals included). F16
 * infinities and NaNs in weights are not supported (they widen to finite values >= 65536); no
 * trained checkpoint has them.
 */
final class VectorMatmul {

  static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
  private static final VectorSpecies<Integer> I = IntVector.SPECIES_PREFERRED;
  private static final VectorSpecies<Short> S = halfWidthShorts();
  private static final int L = F.length();
  private static final int TOKEN_TILE = 4;
  private static final int ROW_BLOCK = 16;
  private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
  private static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(LE);
  private static final ValueLayout.OfShort I16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(LE);
  private static final int F16_SIGN_AND_MAGNITUDE = 0x8fffe000;
  private static final float F16_REBIAS = 0x1p112f;

  private VectorMatmul() {}

  private static VectorSpecies<Short> halfWidthShorts() {
    return switch (FloatVector.SPECIES_PREFERRED.vectorBitSize()) {
      case 128 -> ShortVector.SPECIES_64;
      case 256 -> ShortVector.SPECIES_128;
      case 512 -> ShortVector.SPECIES_256;
      default -> throw new IllegalStateException(
          "unsupported vector width " + FloatVector.SPECIES_PREFERRED.vectorBitSize() + " bits");
    };
  }

  /** The vector shape in use, for {@link Kernels#name()}. */
  static VectorShape shape() {
    return F.vectorShape();
  }

  /** {@code out[t, r] = w[r, :] . x[t, :]} for rows {@code [from, to)} and every token. */
  static void rows(Matrix w, float[] x, int xOffset, float[] out, int outOffset, int numTokens, int from, int to) {
    int cols = w.cols();
    int rows = w.rows();
    for (int blockStart = from; blockStart < to; blockStart += ROW_BLOCK) {
      int blockEnd = Math.min(to, blockStart + ROW_BLOCK);
      int t = 0;
      for (; t + TOKEN_TILE <= numTokens; t += TOKEN_TILE) {
        for (int r = blockStart; r < blockEnd; r++) {
          dotTile(w, r, x, xOffset + t * cols, out, outOffset + t * rows + r, rows);
        }
      }
      for (; t < numTokens; t++) {
        for (int r = blockStart; r < blockEnd; r++) {
          out[outOffset + t * rows + r] = dot(w, r, x, xOffset + t * cols);
        }
      }
    }
  }

  private static float dot(Matrix w, int r, float[] x, int xOffset) {
    MemorySegment data = w.data();
    long rowByte = w.rowByteOffset(r);
    int cols = w.cols();
    return switch (w.dtype()) {
      case F32 -> dotF32(data, rowByte, x, xOffset, cols);
      case F16 -> dotF16(data, rowByte, x, xOffset, cols, true);
      case BF16 -> dotF16(data, rowByte, x, xOffset, cols, false);
      case I64, I32, U8 -> throw new AssertionError("Matrix rejects non-float dtypes");
    };
  }

  private static void dotTile(Matrix w, int r, float[] x, int xOffset, float[] out, int outIndex, int outStride) {
    MemorySegment data = w.data();
    long rowByte = w.rowByteOffset(r);
    int cols = w.cols();
    switch (w.dtype()) {
      case F32 -> dotTileF32(data, rowByte, x, xOffset, cols, out, outIndex, outStride);
      case F16 -> dotTile16(data, rowByte, x, xOffset, cols, out, outIndex, outStride, true);
      case BF16 -> dotTile16(data, rowByte, x, xOffset, cols, out, outIndex, outStride, false);
      case I64, I32, U8 -> throw new AssertionError("Matrix rejects non-float dtypes");
    }
  }

  /** Elements before the first weight address aligned to {@code loadBytes}, at most {@code cols}. */
  private static int head(MemorySegment data, long rowByte, int elementBytes, int loadBytes, int cols) {
    long misalign = Math.floorMod(data.address() + rowByte, (long) loadBytes);
    if (misalign == 0 || misalign % elementBytes != 0) {
      return 0;
    }
    return (int) Math.min(cols, (loadBytes - misalign) / elementBytes);
  }

  private static float scalar16(MemorySegment data, long byteOffset, boolean f16) {
    short bits = data.get(I16_LE, byteOffset);
    return f16 ? Float.float16ToFloat(bits) : Float.intBitsToFloat((bits & 0xffff) << 16);
  }

  /** {@code L} consecutive F16 or BF16 weights widened to floats. */
  private static FloatVector load16(MemorySegment data, long byteOffset, boolean f16) {
    IntVector wide = (IntVector) ShortVector.fromMemorySegment(S, data, byteOffset, LE)
        .convertShape(VectorOperators.S2I, I, 0);
    if (f16) {
      // sign-extended half << 13: sign lands in bit 31, magnitude in bits 27..13; clear 30..28.
      return wide.lanewise(VectorOperators.LSHL, 13)
          .lanewise(VectorOperators.AND, F16_SIGN_AND_MAGNITUDE)
          .reinterpretAsFloats()
          .mul(F16_REBIAS);
    }
    return wide.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
  }

  // hot: decode-path dot product of one 16-bit weight row with one activation row.
  private static float dotF16(MemorySegment data, long rowByte, float[] x, int xOffset, int cols, boolean f16) {
    int head = head(data, rowByte, 2, S.vectorByteSize(), cols);
    float sum = 0f;
    int c = 0;
    for (; c < head; c++) {
      sum += scalar16(data, rowByte + 2L * c, f16) * x[xOffset + c];
    }
    FloatVector acc0 = FloatVector.zero(F);
    FloatVector acc1 = FloatVector.zero(F);
    FloatVector acc2 = FloatVector.zero(F);
    FloatVector acc3 = FloatVector.zero(F);
    for (; c + 4 * L <= cols; c += 4 * L) {
      long b = rowByte + 2L * c;
      acc0 = load16(data, b, f16).fma(FloatVector.fromArray(F, x, xOffset + c), acc0);
      acc1 = load16(data, b + 2L * L, f16).fma(FloatVector.fromArray(F, x, xOffset + c + L), acc1);
      acc2 = load16(data, b + 4L * L, f16).fma(FloatVector.fromArray(F, x, xOffset + c + 2 * L), acc2);
      acc3 = load16(data, b + 6L * L, f16).fma(FloatVector.fromArray(F, x, xOffset + c + 3 * L), acc3);
    }
    for (; c + L <= cols; c += L) {
      acc0 = load16(data, rowByte + 2L * c, f16).fma(FloatVector.fromArray(F, x, xOffset + c), acc0);
    }
    sum += acc0.add(acc1).add(acc2.add(acc3)).reduceLanes(VectorOperators.ADD);
    for (; c < cols; c++) {
      sum += scalar16(data, rowByte + 2L * c, f16) * x[xOffset + c];
    }
    return sum;
  }

  private static float dotF32(MemorySegment data, long rowByte, float[] x, int xOffset, int cols) {
    int head = head(data, rowByte, 4, F.vectorByteSize(), cols);
    float sum = 0f;
    int c = 0;
    for (; c < head; c++) {
      sum += data.get(F32_LE, rowByte + 4L * c) * x[xOffset + c];
    }
    FloatVector acc0 = FloatVector.zero(F);
    FloatVector acc1 = FloatVector.zero(F);
    FloatVector acc2 = FloatVector.zero(F);
    FloatVector acc3 = FloatVector.zero(F);
    for (; c + 4 * L <= cols; c += 4 * L) {
      long b = rowByte + 4L * c;
      acc0 = FloatVector.fromMemorySegment(F, data, b, LE).fma(FloatVector.fromArray(F, x, xOffset + c), acc0);
      acc1 = FloatVector.fromMemorySegment(F, data, b + 4L * L, LE)
          .fma(FloatVector.fromArray(F, x, xOffset + c + L), acc1);
      acc2 = FloatVector.fromMemorySegment(F, data, b + 8L * L, LE)
          .fma(FloatVector.fromArray(F, x, xOffset + c + 2 * L), acc2);
      acc3 = FloatVector.fromMemorySegment(F, data, b + 12L * L, LE)
          .fma(FloatVector.fromArray(F, x, xOffset + c + 3 * L), acc3);
    }
    for (; c + L <= cols; c += L) {
      acc0 = FloatVector.fromMemorySegment(F, data, rowByte + 4L * c, LE)
          .fma(FloatVector.fromArray(F, x, xOffset + c), acc0);
    }
    sum += acc0.add(acc1).add(acc2.add(acc3)).reduceLanes(VectorOperators.ADD);
    for (; c < cols; c++) {
      sum += data.get(F32_LE, rowByte + 4L * c) * x[xOffset + c];
    }
    return sum;
  }

  // hot: prefill, one 16-bit weight row against four activation rows; each weight vector is widened once.
  private static void dotTile16(MemorySegment data, long rowByte, float[] x, int x0, int cols,
      float[] out, int outIndex, int outStride, boolean f16) {
    int x1 = x0 + cols;
    int x2 = x1 + cols;
    int x3 = x2 + cols;
    int head = head(data, rowByte, 2, S.vectorByteSize(), cols);
    float s0 = 0f;
    float s1 = 0f;
    float s2 = 0f;
    float s3 = 0f;
    int c = 0;
    for (; c < head; c++) {
      float wv = scalar16(data, rowByte + 2L * c, f16);
      s0 += wv * x[x0 + c];
      s1 += wv * x[x1 + c];
      s2 += wv * x[x2 + c];
      s3 += wv * x[x3 + c];
    }
    FloatVector a0 = FloatVector.zero(F);
    FloatVector a1 = FloatVector.zero(F);
    FloatVector a2 = FloatVector.zero(F);
    FloatVector a3 = FloatVector.zero(F);
    for (; c + L <= cols; c += L) {
      FloatVector wv = load16(data, rowByte + 2L * c, f16);
      a0 = wv.fma(FloatVector.fromArray(F, x, x0 + c), a0);
      a1 = wv.fma(FloatVector.fromArray(F, x, x1 + c), a1);
      a2 = wv.fma(FloatVector.fromArray(F, x, x2 + c), a2);
      a3 = wv.fma(FloatVector.fromArray(F, x, x3 + c), a3);
    }
    s0 += a0.reduceLanes(VectorOperators.ADD);
    s1 += a1.reduceLanes(VectorOperators.ADD);
    s2 += a2.reduceLanes(VectorOperators.ADD);
    s3 += a3.reduceLanes(VectorOperators.ADD);
    for (; c < cols; c++) {
      float wv = scalar16(data, rowByte + 2L * c, f16);
      s0 += wv * x[x0 + c];
      s1 += wv * x[x1 + c];
      s2 += wv * x[x2 + c];
      s3 += wv * x[x3 + c];
    }
    out[outIndex] = s0;
    out[outIndex + outStride] = s1;
    out[outIndex + 2 * outStride] = s2;
    out[outIndex + 3 * outStride] = s3;
  }

  // hot: prefill, one F32 weight row against four activation rows.
  private static void dotTileF32(MemorySegment data, long rowByte, float[] x, int x0, int cols,
      float[] out, int outIndex, int outStride) {
    int x1 = x0 + cols;
    int x2 = x1 + cols;
    int x3 = x2 + cols;
    int head = head(data, rowByte, 4, F.vectorByteSize(), cols);
    float s0 = 0f;
    float s1 = 0f;
    float s2 = 0f;
    float s3 = 0f;
    int c = 0;
    for (; c < head; c++) {
      float wv = data.get(F32_LE, rowByte + 4L * c);
      s0 += wv * x[x0 + c];
      s1 += wv * x[x1 + c];
      s2 += wv * x[x2 + c];
      s3 += wv * x[x3 + c];
    }
    FloatVector a0 = FloatVector.zero(F);
    FloatVector a1 = FloatVector.zero(F);
    FloatVector a2 = FloatVector.zero(F);
    FloatVector a3 = FloatVector.zero(F);
    for (; c + L <= cols; c += L) {
      FloatVector wv = FloatVector.fromMemorySegment(F, data, rowByte + 4L * c, LE);
      a0 = wv.fma(FloatVector.fromArray(F, x, x0 + c), a0);
      a1 = wv.fma(FloatVector.fromArray(F, x, x1 + c), a1);
      a2 = wv.fma(FloatVector.fromArray(F, x, x2 + c), a2);
      a3 = wv.fma(FloatVector.fromArray(F, x, x3 + c), a3);
    }
    s0 += a0.reduceLanes(VectorOperators.ADD);
    s1 += a1.reduceLanes(VectorOperators.ADD);
    s2 += a2.reduceLanes(VectorOperators.ADD);
    s3 += a3.reduceLanes(VectorOperators.ADD);
    for (; c < cols; c++) {
      float wv = data.get(F32_LE, rowByte + 4L * c);
      s0 += wv * x[x0 + c];
      s1 += wv * x[x1 + c];
      s2 += wv * x[x2 + c];
      s3 += wv * x[x3 + c];
    }
    out[outIndex] = s0;
    out[outIndex + outStride] = s1;
    out[outIndex + 2 * outStride] = s2;
    out[outIndex + 3 * outStride] = s3;
  }
}
