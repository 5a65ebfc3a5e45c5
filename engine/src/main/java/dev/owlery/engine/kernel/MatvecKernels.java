package dev.owlery.engine.kernel;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The one-token (decode) matmul kernels of {@link VectorMatmul}: dot products of one weight row, or
 * of four rows at once, with one activation row, per weight dtype. Decode is bound by memory
 * bandwidth, so the four-row kernels matter most: they load each activation vector once for four
 * rows and keep four weight streams in flight. Each kernel is a separate method large enough that
 * C2 compiles it on its own: with more than about eight widened vectors in one compilation unit C2
 * stops inlining the Vector API (NodeCountInliningCutoff) and the code falls back to boxed vectors.
 * Measured by {@code owlery bench} (BenchCommand) against {@link ScalarKernels} in the same run.
 */
final class MatvecKernels {

  private static final VectorSpecies<Float> F = VectorMatmul.F;
  private static final VectorSpecies<Integer> I = VectorMatmul.I;
  private static final int L = F.length();
  private static final VectorSpecies<Byte> B = VectorMatmul.B;
  private static final int Q8_STEP = VectorMatmul.B.length();
  /** Whether a Q8_0 load holds two float vectors' worth (L = 4), not one. */
  private static final boolean Q8_TWO_PARTS = Q8_STEP > L;
  private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
  private static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(LE);
  private static final ValueLayout.OfShort I16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(LE);

  private MatvecKernels() {}

  // hot: decode-path dot product of one 16-bit weight row with one activation row in pair order.
  static float dotF16(MemorySegment data, long rowByte, float[] x, int xOffset, int cols, int head) {
    float sum = 0f;
    int c = 0;
    for (; c < head; c++) {
      sum += VectorMatmul.scalar16(data, rowByte + 2L * c, true) * x[xOffset + c];
    }
    FloatVector acc0 = FloatVector.zero(F);
    FloatVector acc1 = FloatVector.zero(F);
    FloatVector acc2 = FloatVector.zero(F);
    FloatVector acc3 = FloatVector.zero(F);
    for (; c + 4 * L <= cols; c += 4 * L) {
      IntVector p0 = IntVector.fromMemorySegment(I, data, rowByte + 2L * c, LE);
      IntVector p1 = IntVector.fromMemorySegment(I, data, rowByte + 2L * (c + 2 * L), LE);
      acc0 = VectorMatmul.evenF16(p0).fma(FloatVector.fromArray(F, x, xOffset + c), acc0);
      acc1 = VectorMatmul.oddF16(p0).fma(FloatVector.fromArray(F, x, xOffset + c + L), acc1);
      acc2 = VectorMatmul.evenF16(p1).fma(FloatVector.fromArray(F, x, xOffset + c + 2 * L), acc2);
      acc3 = VectorMatmul.oddF16(p1).fma(FloatVector.fromArray(F, x, xOffset + c + 3 * L), acc3);
    }
    for (; c + 2 * L <= cols; c += 2 * L) {
      IntVector p0 = IntVector.fromMemorySegment(I, data, rowByte + 2L * c, LE);
      acc0 = VectorMatmul.evenF16(p0).fma(FloatVector.fromArray(F, x, xOffset + c), acc0);
      acc1 = VectorMatmul.oddF16(p0).fma(FloatVector.fromArray(F, x, xOffset + c + L), acc1);
    }
    sum += acc0.add(acc1).add(acc2.add(acc3)).reduceLanes(VectorOperators.ADD);
    for (; c < cols; c++) {
      sum += VectorMatmul.scalar16(data, rowByte + 2L * c, true) * x[xOffset + c];
    }
    return sum;
  }

  // hot: as dotF16, for BF16 weights; one 16-bit weight row with one activation row in pair order.
  static float dotBF16(MemorySegment data, long rowByte, float[] x, int xOffset, int cols, int head) {
    float sum = 0f;
    int c = 0;
    for (; c < head; c++) {
      sum += VectorMatmul.scalar16(data, rowByte + 2L * c, false) * x[xOffset + c];
    }
    FloatVector acc0 = FloatVector.zero(F);
    FloatVector acc1 = FloatVector.zero(F);
    FloatVector acc2 = FloatVector.zero(F);
    FloatVector acc3 = FloatVector.zero(F);
    for (; c + 4 * L <= cols; c += 4 * L) {
      IntVector p0 = IntVector.fromMemorySegment(I, data, rowByte + 2L * c, LE);
      IntVector p1 = IntVector.fromMemorySegment(I, data, rowByte + 2L * (c + 2 * L), LE);
      acc0 = VectorMatmul.evenBF16(p0).fma(FloatVector.fromArray(F, x, xOffset + c), acc0);
      acc1 = VectorMatmul.oddBF16(p0).fma(FloatVector.fromArray(F, x, xOffset + c + L), acc1);
      acc2 = VectorMatmul.evenBF16(p1).fma(FloatVector.fromArray(F, x, xOffset + c + 2 * L), acc2);
      acc3 = VectorMatmul.oddBF16(p1).fma(FloatVector.fromArray(F, x, xOffset + c + 3 * L), acc3);
    }
    for (; c + 2 * L <= cols; c += 2 * L) {
      IntVector p0 = IntVector.fromMemorySegment(I, data, rowByte + 2L * c, LE);
      acc0 = VectorMatmul.evenBF16(p0).fma(FloatVector.fromArray(F, x, xOffset + c), acc0);
      acc1 = VectorMatmul.oddBF16(p0).fma(FloatVector.fromArray(F, x, xOffset + c + L), acc1);
    }
    sum += acc0.add(acc1).add(acc2.add(acc3)).reduceLanes(VectorOperators.ADD);
    for (; c < cols; c++) {
      sum += VectorMatmul.scalar16(data, rowByte + 2L * c, false) * x[xOffset + c];
    }
    return sum;
  }

  static float dotF32(MemorySegment data, long rowByte, float[] x, int xOffset, int cols, int head) {
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


  // hot: decode, four F16 weight rows against one activation row in pair order; each activation
  // vector is loaded once for the four rows, and four rows are four memory streams in flight.
  static void fourRowsF16(MemorySegment data, long rowByte, long rowBytes, float[] x, int xOffset, int cols,
      int head, float[] out, int outIndex, float outScale) {
    long b1 = rowByte + rowBytes;
    long b2 = b1 + rowBytes;
    long b3 = b2 + rowBytes;
    FloatVector a0 = FloatVector.zero(F);
    FloatVector a1 = FloatVector.zero(F);
    FloatVector a2 = FloatVector.zero(F);
    FloatVector a3 = FloatVector.zero(F);
    int c = head;
    for (; c + 2 * L <= cols; c += 2 * L) {
      FloatVector xe = FloatVector.fromArray(F, x, xOffset + c);
      FloatVector xo = FloatVector.fromArray(F, x, xOffset + c + L);
      IntVector p0 = IntVector.fromMemorySegment(I, data, rowByte + 2L * c, LE);
      IntVector p1 = IntVector.fromMemorySegment(I, data, b1 + 2L * c, LE);
      IntVector p2 = IntVector.fromMemorySegment(I, data, b2 + 2L * c, LE);
      IntVector p3 = IntVector.fromMemorySegment(I, data, b3 + 2L * c, LE);
      a0 = VectorMatmul.oddF16(p0).fma(xo, VectorMatmul.evenF16(p0).fma(xe, a0));
      a1 = VectorMatmul.oddF16(p1).fma(xo, VectorMatmul.evenF16(p1).fma(xe, a1));
      a2 = VectorMatmul.oddF16(p2).fma(xo, VectorMatmul.evenF16(p2).fma(xe, a2));
      a3 = VectorMatmul.oddF16(p3).fma(xo, VectorMatmul.evenF16(p3).fma(xe, a3));
    }
    out[outIndex] = a0.reduceLanes(VectorOperators.ADD);
    out[outIndex + 1] = a1.reduceLanes(VectorOperators.ADD);
    out[outIndex + 2] = a2.reduceLanes(VectorOperators.ADD);
    out[outIndex + 3] = a3.reduceLanes(VectorOperators.ADD);
    addScalarColumns16(data, rowByte, rowBytes, x, xOffset, 0, head, true, out, outIndex);
    addScalarColumns16(data, rowByte, rowBytes, x, xOffset, c, cols, true, out, outIndex);
    for (int i = 0; i < 4; i++) {
      out[outIndex + i] *= outScale;
    }
  }


  // hot: decode, four BF16 weight rows against one activation row in pair order; each activation
  // vector is loaded once for the four rows, and four rows are four memory streams in flight.
  static void fourRowsBF16(MemorySegment data, long rowByte, long rowBytes, float[] x, int xOffset, int cols,
      int head, float[] out, int outIndex, float outScale) {
    long b1 = rowByte + rowBytes;
    long b2 = b1 + rowBytes;
    long b3 = b2 + rowBytes;
    FloatVector a0 = FloatVector.zero(F);
    FloatVector a1 = FloatVector.zero(F);
    FloatVector a2 = FloatVector.zero(F);
    FloatVector a3 = FloatVector.zero(F);
    int c = head;
    for (; c + 2 * L <= cols; c += 2 * L) {
      FloatVector xe = FloatVector.fromArray(F, x, xOffset + c);
      FloatVector xo = FloatVector.fromArray(F, x, xOffset + c + L);
      IntVector p0 = IntVector.fromMemorySegment(I, data, rowByte + 2L * c, LE);
      IntVector p1 = IntVector.fromMemorySegment(I, data, b1 + 2L * c, LE);
      IntVector p2 = IntVector.fromMemorySegment(I, data, b2 + 2L * c, LE);
      IntVector p3 = IntVector.fromMemorySegment(I, data, b3 + 2L * c, LE);
      a0 = VectorMatmul.oddBF16(p0).fma(xo, VectorMatmul.evenBF16(p0).fma(xe, a0));
      a1 = VectorMatmul.oddBF16(p1).fma(xo, VectorMatmul.evenBF16(p1).fma(xe, a1));
      a2 = VectorMatmul.oddBF16(p2).fma(xo, VectorMatmul.evenBF16(p2).fma(xe, a2));
      a3 = VectorMatmul.oddBF16(p3).fma(xo, VectorMatmul.evenBF16(p3).fma(xe, a3));
    }
    out[outIndex] = a0.reduceLanes(VectorOperators.ADD);
    out[outIndex + 1] = a1.reduceLanes(VectorOperators.ADD);
    out[outIndex + 2] = a2.reduceLanes(VectorOperators.ADD);
    out[outIndex + 3] = a3.reduceLanes(VectorOperators.ADD);
    addScalarColumns16(data, rowByte, rowBytes, x, xOffset, 0, head, false, out, outIndex);
    addScalarColumns16(data, rowByte, rowBytes, x, xOffset, c, cols, false, out, outIndex);
    for (int i = 0; i < 4; i++) {
      out[outIndex + i] *= outScale;
    }
  }


  // hot: decode, four F32 weight rows against one activation row; each activation vector is loaded once.
  static void fourRowsF32(MemorySegment data, long rowByte, long rowBytes, float[] x, int xOffset, int cols,
      int head, float[] out, int outIndex) {
    long b1 = rowByte + rowBytes;
    long b2 = b1 + rowBytes;
    long b3 = b2 + rowBytes;
    FloatVector a0 = FloatVector.zero(F);
    FloatVector a1 = FloatVector.zero(F);
    FloatVector a2 = FloatVector.zero(F);
    FloatVector a3 = FloatVector.zero(F);
    int c = head;
    for (; c + L <= cols; c += L) {
      FloatVector xv = FloatVector.fromArray(F, x, xOffset + c);
      a0 = FloatVector.fromMemorySegment(F, data, rowByte + 4L * c, LE).fma(xv, a0);
      a1 = FloatVector.fromMemorySegment(F, data, b1 + 4L * c, LE).fma(xv, a1);
      a2 = FloatVector.fromMemorySegment(F, data, b2 + 4L * c, LE).fma(xv, a2);
      a3 = FloatVector.fromMemorySegment(F, data, b3 + 4L * c, LE).fma(xv, a3);
    }
    out[outIndex] = a0.reduceLanes(VectorOperators.ADD);
    out[outIndex + 1] = a1.reduceLanes(VectorOperators.ADD);
    out[outIndex + 2] = a2.reduceLanes(VectorOperators.ADD);
    out[outIndex + 3] = a3.reduceLanes(VectorOperators.ADD);
    addScalarColumnsF32(data, rowByte, rowBytes, x, xOffset, 0, head, out, outIndex);
    addScalarColumnsF32(data, rowByte, rowBytes, x, xOffset, c, cols, out, outIndex);
  }

  /**
   * Adds columns {@code [from, to)} of four 16-bit rows times {@code x} to {@code out[outIndex..+3]}:
   * the head and tail of the four-row kernels, kept out of them so that C2's inlining budget goes to
   * the vector body (one inlined segment read here instead of sixteen there).
   */
  private static void addScalarColumns16(MemorySegment data, long rowByte, long rowBytes, float[] x, int xOffset,
      int from, int to, boolean f16, float[] out, int outIndex) {
    for (int i = 0; i < 4; i++) {
      long row = rowByte + i * rowBytes;
      float sum = 0f;
      for (int c = from; c < to; c++) {
        sum += VectorMatmul.scalar16(data, row + 2L * c, f16) * x[xOffset + c];
      }
      out[outIndex + i] += sum;
    }
  }

  /** As {@link #addScalarColumns16} for F32 rows. */
  private static void addScalarColumnsF32(MemorySegment data, long rowByte, long rowBytes, float[] x, int xOffset,
      int from, int to, float[] out, int outIndex) {
    for (int i = 0; i < 4; i++) {
      long row = rowByte + i * rowBytes;
      float sum = 0f;
      for (int c = from; c < to; c++) {
        sum += data.get(F32_LE, row + 4L * c) * x[xOffset + c];
      }
      out[outIndex + i] += sum;
    }
  }

  // hot: decode, four Q8_0 weight rows against one activation row in natural order. Per block of 32
  // the int8 weights widen to floats, four block sums share each activation vector, and each block
  // sum is scaled by its row's F16 scale once.
  static void fourRowsQ8_0(MemorySegment data, long rowByte, long rowBytes, float[] x, int xOffset, int cols,
      float[] out, int outIndex) {
    long b1 = rowByte + rowBytes;
    long b2 = b1 + rowBytes;
    long b3 = b2 + rowBytes;
    FloatVector a0 = FloatVector.zero(F);
    FloatVector a1 = FloatVector.zero(F);
    FloatVector a2 = FloatVector.zero(F);
    FloatVector a3 = FloatVector.zero(F);
    for (int c = 0; c < cols; c += 32) {
      long block = 34L * (c >> 5);
      FloatVector s0 = FloatVector.zero(F);
      FloatVector s1 = FloatVector.zero(F);
      FloatVector s2 = FloatVector.zero(F);
      FloatVector s3 = FloatVector.zero(F);
      for (int k = 0; k < 32; k += Q8_STEP) {
        long q = block + 2 + k;
        ByteVector q0 = VectorMatmul.loadQ8(data, rowByte + q);
        ByteVector q1 = VectorMatmul.loadQ8(data, b1 + q);
        ByteVector q2 = VectorMatmul.loadQ8(data, b2 + q);
        ByteVector q3 = VectorMatmul.loadQ8(data, b3 + q);
        FloatVector xv = FloatVector.fromArray(F, x, xOffset + c + k);
        s0 = VectorMatmul.widenQ8Low(q0).fma(xv, s0);
        s1 = VectorMatmul.widenQ8Low(q1).fma(xv, s1);
        s2 = VectorMatmul.widenQ8Low(q2).fma(xv, s2);
        s3 = VectorMatmul.widenQ8Low(q3).fma(xv, s3);
        if (Q8_TWO_PARTS) {
          xv = FloatVector.fromArray(F, x, xOffset + c + k + L);
          s0 = VectorMatmul.widenQ8High(q0).fma(xv, s0);
          s1 = VectorMatmul.widenQ8High(q1).fma(xv, s1);
          s2 = VectorMatmul.widenQ8High(q2).fma(xv, s2);
          s3 = VectorMatmul.widenQ8High(q3).fma(xv, s3);
        }
      }
      a0 = s0.fma(FloatVector.broadcast(F, Float.float16ToFloat(data.get(I16_LE, rowByte + block))), a0);
      a1 = s1.fma(FloatVector.broadcast(F, Float.float16ToFloat(data.get(I16_LE, b1 + block))), a1);
      a2 = s2.fma(FloatVector.broadcast(F, Float.float16ToFloat(data.get(I16_LE, b2 + block))), a2);
      a3 = s3.fma(FloatVector.broadcast(F, Float.float16ToFloat(data.get(I16_LE, b3 + block))), a3);
    }
    out[outIndex] = a0.reduceLanes(VectorOperators.ADD);
    out[outIndex + 1] = a1.reduceLanes(VectorOperators.ADD);
    out[outIndex + 2] = a2.reduceLanes(VectorOperators.ADD);
    out[outIndex + 3] = a3.reduceLanes(VectorOperators.ADD);
  }

  // hot: as fourRowsQ8_0, for one row.
  static float dotQ8_0(MemorySegment data, long rowByte, float[] x, int xOffset, int cols) {
    FloatVector acc = FloatVector.zero(F);
    for (int c = 0; c < cols; c += 32) {
      long block = rowByte + 34L * (c >> 5);
      FloatVector sum = FloatVector.zero(F);
      for (int k = 0; k < 32; k += Q8_STEP) {
        ByteVector q = VectorMatmul.loadQ8(data, block + 2 + k);
        sum = VectorMatmul.widenQ8Low(q).fma(FloatVector.fromArray(F, x, xOffset + c + k), sum);
        if (Q8_TWO_PARTS) {
          sum = VectorMatmul.widenQ8High(q).fma(FloatVector.fromArray(F, x, xOffset + c + k + L), sum);
        }
      }
      acc = sum.fma(FloatVector.broadcast(F, Float.float16ToFloat(data.get(I16_LE, block))), acc);
    }
    return acc.reduceLanes(VectorOperators.ADD);
  }

  // hot: decode, four Q4_0 weight rows against one activation row in natural order, as two calls of
  // two rows, which keeps each compilation unit within what C2 inlines.
  static void fourRowsQ4_0(MemorySegment data, long rowByte, long rowBytes, float[] x, int xOffset, int cols,
      float[] out, int outIndex) {
    twoRowsQ4_0(data, rowByte, rowBytes, x, xOffset, cols, out, outIndex);
    twoRowsQ4_0(data, rowByte + 2 * rowBytes, rowBytes, x, xOffset, cols, out, outIndex + 2);
  }

  // hot: two Q4_0 rows: each load of nibble bytes gives L weights of the block's first half (low
  // nibbles, AND 0x0f then minus 8) and L of its second half: the high nibble h in place with its top
  // bit flipped is the signed byte 16 (h - 8), so the activations of that half are scaled by 1/16.
  // Only byte AND, SUB and XOR come before the widening: x86 has no byte shift, and with one C2 ran
  // the expression, conversion included, as the Vector API's boxed fallback; the expressions are
  // written out because C2 did not inline them from helper methods here (same fallback; Q4_0 decode
  // measured 1-2.7 tokens/s either way, 8.9 written out).
  private static void twoRowsQ4_0(MemorySegment data, long rowByte, long rowBytes, float[] x, int xOffset, int cols,
      float[] out, int outIndex) {
    long b1 = rowByte + rowBytes;
    FloatVector a0 = FloatVector.zero(F);
    FloatVector a1 = FloatVector.zero(F);
    for (int c = 0; c < cols; c += 32) {
      long block = 18L * (c >> 5);
      FloatVector s0 = FloatVector.zero(F);
      FloatVector s1 = FloatVector.zero(F);
      for (int k = 0; k < 16; k += L) {
        long q = block + 2 + k;
        ByteVector q0 = ByteVector.fromMemorySegment(B, data, rowByte + q, LE);
        ByteVector q1 = ByteVector.fromMemorySegment(B, data, b1 + q, LE);
        FloatVector xl = FloatVector.fromArray(F, x, xOffset + c + k);
        FloatVector xh = FloatVector.fromArray(F, x, xOffset + c + 16 + k).mul(0.0625f);
        FloatVector l0 = (FloatVector) q0.and((byte) 0x0f).sub((byte) 8).convertShape(VectorOperators.B2F, F, 0);
        FloatVector h0 = (FloatVector) q0.and((byte) 0xf0).lanewise(VectorOperators.XOR, (byte) 0x80)
            .convertShape(VectorOperators.B2F, F, 0);
        FloatVector l1 = (FloatVector) q1.and((byte) 0x0f).sub((byte) 8).convertShape(VectorOperators.B2F, F, 0);
        FloatVector h1 = (FloatVector) q1.and((byte) 0xf0).lanewise(VectorOperators.XOR, (byte) 0x80)
            .convertShape(VectorOperators.B2F, F, 0);
        s0 = l0.fma(xl, h0.fma(xh, s0));
        s1 = l1.fma(xl, h1.fma(xh, s1));
      }
      a0 = s0.fma(FloatVector.broadcast(F, Float.float16ToFloat(data.get(I16_LE, rowByte + block))), a0);
      a1 = s1.fma(FloatVector.broadcast(F, Float.float16ToFloat(data.get(I16_LE, b1 + block))), a1);
    }
    out[outIndex] = a0.reduceLanes(VectorOperators.ADD);
    out[outIndex + 1] = a1.reduceLanes(VectorOperators.ADD);
  }

  // hot: as fourRowsQ4_0, for one row.
  static float dotQ4_0(MemorySegment data, long rowByte, float[] x, int xOffset, int cols) {
    FloatVector acc = FloatVector.zero(F);
    for (int c = 0; c < cols; c += 32) {
      long block = rowByte + 18L * (c >> 5);
      FloatVector sum = FloatVector.zero(F);
      for (int k = 0; k < 16; k += L) {
        ByteVector q = ByteVector.fromMemorySegment(B, data, block + 2 + k, LE);
        FloatVector low = (FloatVector) q.and((byte) 0x0f).sub((byte) 8).convertShape(VectorOperators.B2F, F, 0);
        FloatVector high = (FloatVector) q.and((byte) 0xf0).lanewise(VectorOperators.XOR, (byte) 0x80)
            .convertShape(VectorOperators.B2F, F, 0);
        sum = low.fma(FloatVector.fromArray(F, x, xOffset + c + k),
            high.fma(FloatVector.fromArray(F, x, xOffset + c + 16 + k).mul(0.0625f), sum));
      }
      acc = sum.fma(FloatVector.broadcast(F, Float.float16ToFloat(data.get(I16_LE, block))), acc);
    }
    return acc.reduceLanes(VectorOperators.ADD);
  }
}
