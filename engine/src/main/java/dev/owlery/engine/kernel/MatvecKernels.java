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
 * The one-token (decode) matmul kernels of {@link VectorMatmul}: the dot product of weight rows
 * with one activation row, per weight dtype: F16 and BF16 four rows at a time
 * ({@link #dotF16Rows4}, {@link #dotBF16Rows4}), the others and the rows left over one at a time
 * (see {@link VectorMatmul} for how many rows at once measured what, per dtype and host). Decode
 * is bound by memory bandwidth. Each kernel is a separate method that C2 compiles on its own: with
 * more than about eight widened vectors in one compilation unit C2 stops inlining the Vector API
 * (NodeCountInliningCutoff) and the code falls back to boxed vectors. Measured by
 * {@code owlery bench} (BenchCommand) against {@link ScalarKernels} in the same run.
 */
final class MatvecKernels {

  private static final VectorSpecies<Float> F = VectorMatmul.F;
  private static final VectorSpecies<Integer> I = VectorMatmul.I;
  private static final int L = F.length();
  private static final VectorSpecies<Byte> B = VectorMatmul.B;
  private static final int Q8_STEP = VectorMatmul.B.length();
  /** Whether a Q8_0 load holds two float vectors' worth (L = 4), not one. */
  private static final boolean Q8_TWO_PARTS = Q8_STEP > L;
  /** Whether one load of B holds a Q4_0 block's 16 nibble bytes (L = 16, AVX-512). */
  private static final boolean Q4_ONE_LOAD = L == 16;
  /** Whether one load of int8 weights is half a Q8_0 block (L = 16, AVX-512). */
  private static final boolean Q8_HALF_BLOCK_LOADS = Q8_STEP == 16 && !Q8_TWO_PARTS;
  /** A whole Q8_0 block's 32 int8 weights in one load, widened in two parts where L = 16. */
  private static final VectorSpecies<Byte> Q8_BLOCK = ByteVector.SPECIES_256;
  private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
  private static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(LE);
  private static final ValueLayout.OfShort I16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(LE);
  private static final int F16_SIGN_AND_MAGNITUDE = VectorMatmul.F16_SIGN_AND_MAGNITUDE;
  private static final int F16_LIFT_BITS = VectorMatmul.F16_EXPONENT_LIFT << 23;
  private static final int BF16_HIGH_HALF = 0xffff0000;

  private MatvecKernels() {}

  // hot: decode, one F16 weight row against one activation row in pair order, the weights lifted to
  // normal floats (VectorMatmul.evenF16Lifted): what the halves with a zero exponent field lack is
  // the caller's to add (ZeroExponentHalves). The rows dotF16Rows4 leaves over (fewer than four at
  // the end of a row block); its arithmetic to the last rounding, so that a row's sum does not
  // depend on which of the two kernels computed it (thread shares and tensor-parallel slices move
  // rows between them).
  static float dotF16(MemorySegment data, long rowByte, float[] x, int xOffset, int cols, int head) {
    int vectorEnd = head + (cols - head) / (2 * L) * (2 * L);
    FloatVector acc = FloatVector.zero(F);
    long end = rowByte + 2L * vectorEnd;
    int xc = xOffset + head;
    for (long b = rowByte + 2L * head; b < end; b += 4L * L, xc += 2 * L) {
      IntVector p = IntVector.fromMemorySegment(I, data, b, LE);
      acc = VectorMatmul.evenF16Lifted(p).fma(FloatVector.fromArray(F, x, xc), acc);
      acc = VectorMatmul.oddF16Lifted(p).fma(FloatVector.fromArray(F, x, xc + L), acc);
    }
    return acc.reduceLanes(VectorOperators.ADD) + scalarEnds(data, rowByte, x, xOffset, cols, head, vectorEnd, true);
  }

  // hot: as dotF16, for BF16 weights: the rows dotBF16Rows4 leaves over, with its arithmetic.
  static float dotBF16(MemorySegment data, long rowByte, float[] x, int xOffset, int cols, int head) {
    int vectorEnd = head + (cols - head) / (2 * L) * (2 * L);
    FloatVector acc = FloatVector.zero(F);
    long end = rowByte + 2L * vectorEnd;
    int xc = xOffset + head;
    for (long b = rowByte + 2L * head; b < end; b += 4L * L, xc += 2 * L) {
      IntVector p = IntVector.fromMemorySegment(I, data, b, LE);
      acc = VectorMatmul.evenBF16(p).fma(FloatVector.fromArray(F, x, xc), acc);
      acc = VectorMatmul.oddBF16(p).fma(FloatVector.fromArray(F, x, xc + L), acc);
    }
    return acc.reduceLanes(VectorOperators.ADD) + scalarEnds(data, rowByte, x, xOffset, cols, head, vectorEnd, false);
  }

  // hot: decode, dotF16 of four rows (each rowStride bytes after the one before) against one
  // activation row: each vector of x is loaded once for the four, and four sequential streams keep
  // more of memory's latency in flight than one. Their sums go to out[outIndex .. outIndex + 3],
  // without the zero-exponent halves' correction. The loop counts the first row's byte offset (a
  // long): C2 then drops the segment's bounds checks from it, which with an int column counter it
  // keeps. The widening is written out: through evenF16Lifted/oddF16Lifted C2 stopped inlining
  // (callee too large, NodeCountInliningCutoff) and ran the boxed Vector API. Intel AMX host, one
  // thread, 2 GiB of 2,048-column rows, one JVM taking turns: 10.0-10.2 GB/s against 8.85-8.88 for
  // dotF16 row by row; 2 rows 9.0-9.1, 3 rows 9.8-9.9, 6 rows 9.8-10.1, 8 rows 9.5-9.8 (a plain sum
  // 13.0). `owlery bench --rows 327680 --cols 2048 --dtypes F16 --matmul-tokens 1`: 10.1 against
  // 8.1-8.3 GB/s on one thread, 17.8-17.9 against 14.9-15.3 on two.
  static void dotF16Rows4(MemorySegment data, long rowByte, long rowStride, float[] x, int xOffset, int cols,
      int head, float[] out, int outIndex) {
    int vectorEnd = head + (cols - head) / (2 * L) * (2 * L);
    FloatVector acc0 = FloatVector.zero(F);
    FloatVector acc1 = FloatVector.zero(F);
    FloatVector acc2 = FloatVector.zero(F);
    FloatVector acc3 = FloatVector.zero(F);
    long end = rowByte + 2L * vectorEnd;
    int xc = xOffset + head;
    for (long b = rowByte + 2L * head; b < end; b += 4L * L, xc += 2 * L) {
      FloatVector even = FloatVector.fromArray(F, x, xc);
      FloatVector odd = FloatVector.fromArray(F, x, xc + L);
      IntVector p0 = IntVector.fromMemorySegment(I, data, b, LE);
      IntVector p1 = IntVector.fromMemorySegment(I, data, b + rowStride, LE);
      IntVector p2 = IntVector.fromMemorySegment(I, data, b + 2 * rowStride, LE);
      IntVector p3 = IntVector.fromMemorySegment(I, data, b + 3 * rowStride, LE);
      acc0 = p0.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 3)
          .lanewise(VectorOperators.AND, F16_SIGN_AND_MAGNITUDE).lanewise(VectorOperators.OR, F16_LIFT_BITS)
          .reinterpretAsFloats().fma(even, acc0);
      acc0 = p0.lanewise(VectorOperators.ASHR, 3).lanewise(VectorOperators.AND, F16_SIGN_AND_MAGNITUDE)
          .lanewise(VectorOperators.OR, F16_LIFT_BITS).reinterpretAsFloats().fma(odd, acc0);
      acc1 = p1.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 3)
          .lanewise(VectorOperators.AND, F16_SIGN_AND_MAGNITUDE).lanewise(VectorOperators.OR, F16_LIFT_BITS)
          .reinterpretAsFloats().fma(even, acc1);
      acc1 = p1.lanewise(VectorOperators.ASHR, 3).lanewise(VectorOperators.AND, F16_SIGN_AND_MAGNITUDE)
          .lanewise(VectorOperators.OR, F16_LIFT_BITS).reinterpretAsFloats().fma(odd, acc1);
      acc2 = p2.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 3)
          .lanewise(VectorOperators.AND, F16_SIGN_AND_MAGNITUDE).lanewise(VectorOperators.OR, F16_LIFT_BITS)
          .reinterpretAsFloats().fma(even, acc2);
      acc2 = p2.lanewise(VectorOperators.ASHR, 3).lanewise(VectorOperators.AND, F16_SIGN_AND_MAGNITUDE)
          .lanewise(VectorOperators.OR, F16_LIFT_BITS).reinterpretAsFloats().fma(odd, acc2);
      acc3 = p3.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 3)
          .lanewise(VectorOperators.AND, F16_SIGN_AND_MAGNITUDE).lanewise(VectorOperators.OR, F16_LIFT_BITS)
          .reinterpretAsFloats().fma(even, acc3);
      acc3 = p3.lanewise(VectorOperators.ASHR, 3).lanewise(VectorOperators.AND, F16_SIGN_AND_MAGNITUDE)
          .lanewise(VectorOperators.OR, F16_LIFT_BITS).reinterpretAsFloats().fma(odd, acc3);
    }
    out[outIndex] = acc0.reduceLanes(VectorOperators.ADD);
    out[outIndex + 1] = acc1.reduceLanes(VectorOperators.ADD);
    out[outIndex + 2] = acc2.reduceLanes(VectorOperators.ADD);
    out[outIndex + 3] = acc3.reduceLanes(VectorOperators.ADD);
    addScalarEnds(data, rowByte, rowStride, x, xOffset, cols, head, vectorEnd, true, out, outIndex);
  }

  // hot: as dotF16Rows4, for BF16 weights (widened in place: no correction to add).
  static void dotBF16Rows4(MemorySegment data, long rowByte, long rowStride, float[] x, int xOffset, int cols,
      int head, float[] out, int outIndex) {
    int vectorEnd = head + (cols - head) / (2 * L) * (2 * L);
    FloatVector acc0 = FloatVector.zero(F);
    FloatVector acc1 = FloatVector.zero(F);
    FloatVector acc2 = FloatVector.zero(F);
    FloatVector acc3 = FloatVector.zero(F);
    long end = rowByte + 2L * vectorEnd;
    int xc = xOffset + head;
    for (long b = rowByte + 2L * head; b < end; b += 4L * L, xc += 2 * L) {
      FloatVector even = FloatVector.fromArray(F, x, xc);
      FloatVector odd = FloatVector.fromArray(F, x, xc + L);
      IntVector p0 = IntVector.fromMemorySegment(I, data, b, LE);
      IntVector p1 = IntVector.fromMemorySegment(I, data, b + rowStride, LE);
      IntVector p2 = IntVector.fromMemorySegment(I, data, b + 2 * rowStride, LE);
      IntVector p3 = IntVector.fromMemorySegment(I, data, b + 3 * rowStride, LE);
      acc0 = p0.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(even, acc0);
      acc0 = p0.lanewise(VectorOperators.AND, BF16_HIGH_HALF).reinterpretAsFloats().fma(odd, acc0);
      acc1 = p1.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(even, acc1);
      acc1 = p1.lanewise(VectorOperators.AND, BF16_HIGH_HALF).reinterpretAsFloats().fma(odd, acc1);
      acc2 = p2.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(even, acc2);
      acc2 = p2.lanewise(VectorOperators.AND, BF16_HIGH_HALF).reinterpretAsFloats().fma(odd, acc2);
      acc3 = p3.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(even, acc3);
      acc3 = p3.lanewise(VectorOperators.AND, BF16_HIGH_HALF).reinterpretAsFloats().fma(odd, acc3);
    }
    out[outIndex] = acc0.reduceLanes(VectorOperators.ADD);
    out[outIndex + 1] = acc1.reduceLanes(VectorOperators.ADD);
    out[outIndex + 2] = acc2.reduceLanes(VectorOperators.ADD);
    out[outIndex + 3] = acc3.reduceLanes(VectorOperators.ADD);
    addScalarEnds(data, rowByte, rowStride, x, xOffset, cols, head, vectorEnd, false, out, outIndex);
  }

  /** Adds to four rows' sums the products of their columns before head and from vectorEnd on. */
  private static void addScalarEnds(MemorySegment data, long rowByte, long rowStride, float[] x, int xOffset,
      int cols, int head, int vectorEnd, boolean f16, float[] out, int outIndex) {
    for (int k = 0; k < 4; k++) {
      out[outIndex + k] += scalarEnds(data, rowByte + k * rowStride, x, xOffset, cols, head, vectorEnd, f16);
    }
  }

  /** The products of one 16-bit row's columns before head and from vectorEnd on, summed in that order. */
  private static float scalarEnds(MemorySegment data, long rowByte, float[] x, int xOffset, int cols, int head,
      int vectorEnd, boolean f16) {
    float sum = 0f;
    for (int c = 0; c < head; c++) {
      sum += VectorMatmul.scalar16(data, rowByte + 2L * c, f16) * x[xOffset + c];
    }
    for (int c = vectorEnd; c < cols; c++) {
      sum += VectorMatmul.scalar16(data, rowByte + 2L * c, f16) * x[xOffset + c];
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


  // hot: decode, one Q8_0 weight row against one activation row in natural order. Per block of 32
  // the int8 weights widen to floats and the block sum is scaled by the block's F16 scale once.
  // Where a float vector is half a block (L = 16), four blocks per iteration, each scaled into its own
  // accumulator: with one, every block waited for the previous block's scaling FMA (1.2x in and out
  // of cache at 2,048 columns, 1 thread); and each block's 32 int8 weights in one 256-bit load widened
  // in two parts: half the loads and bounds checks of two 128-bit loads, which this loop, bound by
  // instructions rather than memory on one thread, measured 1.09-1.22x in L2 (512 x 2,048, one
  // pinned thread, one JVM, alternating) and level from memory. Written out: C2 boxes a vector
  // returned by a helper it does not inline, and in a method this size it stops inlining
  // (NodeCountInliningCutoff); a call left in the loop, even one returning a float, spills every live
  // vector (measured 3x slower).
  static float dotQ8_0(MemorySegment data, long rowByte, float[] x, int xOffset, int cols) {
    FloatVector acc0 = FloatVector.zero(F);
    FloatVector acc1 = FloatVector.zero(F);
    FloatVector acc2 = FloatVector.zero(F);
    FloatVector acc3 = FloatVector.zero(F);
    int c = 0;
    // the width test outside the loops: in a loop's condition it cost 8% (C2 no longer sees a counted loop)
    if (Q8_HALF_BLOCK_LOADS) {
      for (; c + 128 <= cols; c += 128) {
        long block = rowByte + 34L * (c >> 5);
        int xc = xOffset + c;
        ByteVector q0 = ByteVector.fromMemorySegment(Q8_BLOCK, data, block + 2, LE);
        ByteVector q1 = ByteVector.fromMemorySegment(Q8_BLOCK, data, block + 36, LE);
        ByteVector q2 = ByteVector.fromMemorySegment(Q8_BLOCK, data, block + 70, LE);
        ByteVector q3 = ByteVector.fromMemorySegment(Q8_BLOCK, data, block + 104, LE);
        FloatVector s0 = ((FloatVector) q0.convertShape(VectorOperators.B2F, F, 0))
            .mul(FloatVector.fromArray(F, x, xc));
        FloatVector s1 = ((FloatVector) q1.convertShape(VectorOperators.B2F, F, 0))
            .mul(FloatVector.fromArray(F, x, xc + 32));
        FloatVector s2 = ((FloatVector) q2.convertShape(VectorOperators.B2F, F, 0))
            .mul(FloatVector.fromArray(F, x, xc + 64));
        FloatVector s3 = ((FloatVector) q3.convertShape(VectorOperators.B2F, F, 0))
            .mul(FloatVector.fromArray(F, x, xc + 96));
        s0 = ((FloatVector) q0.convertShape(VectorOperators.B2F, F, 1)).fma(FloatVector.fromArray(F, x, xc + 16), s0);
        s1 = ((FloatVector) q1.convertShape(VectorOperators.B2F, F, 1)).fma(FloatVector.fromArray(F, x, xc + 48), s1);
        s2 = ((FloatVector) q2.convertShape(VectorOperators.B2F, F, 1)).fma(FloatVector.fromArray(F, x, xc + 80), s2);
        s3 = ((FloatVector) q3.convertShape(VectorOperators.B2F, F, 1)).fma(FloatVector.fromArray(F, x, xc + 112), s3);
        acc0 = s0.fma(FloatVector.broadcast(F, Float.float16ToFloat(data.get(I16_LE, block))), acc0);
        acc1 = s1.fma(FloatVector.broadcast(F, Float.float16ToFloat(data.get(I16_LE, block + 34))), acc1);
        acc2 = s2.fma(FloatVector.broadcast(F, Float.float16ToFloat(data.get(I16_LE, block + 68))), acc2);
        acc3 = s3.fma(FloatVector.broadcast(F, Float.float16ToFloat(data.get(I16_LE, block + 102))), acc3);
      }
      for (; c < cols; c += 32) {
        long block = rowByte + 34L * (c >> 5);
        FloatVector s0 = VectorMatmul.widenQ8Low(VectorMatmul.loadQ8(data, block + 2))
            .mul(FloatVector.fromArray(F, x, xOffset + c));
        s0 = VectorMatmul.widenQ8Low(VectorMatmul.loadQ8(data, block + 18))
            .fma(FloatVector.fromArray(F, x, xOffset + c + 16), s0);
        acc0 = s0.fma(FloatVector.broadcast(F, Float.float16ToFloat(data.get(I16_LE, block))), acc0);
      }
    }
    for (; c < cols; c += 32) {
      long block = rowByte + 34L * (c >> 5);
      FloatVector sum = FloatVector.zero(F);
      for (int k = 0; k < 32; k += Q8_STEP) {
        ByteVector q = VectorMatmul.loadQ8(data, block + 2 + k);
        sum = VectorMatmul.widenQ8Low(q).fma(FloatVector.fromArray(F, x, xOffset + c + k), sum);
        if (Q8_TWO_PARTS) {
          sum = VectorMatmul.widenQ8High(q).fma(FloatVector.fromArray(F, x, xOffset + c + k + L), sum);
        }
      }
      acc0 = sum.fma(FloatVector.broadcast(F, Float.float16ToFloat(data.get(I16_LE, block))), acc0);
    }
    return acc0.add(acc1).add(acc2.add(acc3)).reduceLanes(VectorOperators.ADD);
  }

  // hot: decode, one Q4_0 row: each load of nibble bytes gives L weights of the block's first half
  // (low nibbles, AND 0x0f then minus 8) and L of its second half: the high nibble h in place with
  // its top bit flipped is the signed byte 16 (h - 8), so the activations of that half are scaled
  // by 1/16. Only byte AND, SUB and XOR come before the widening: x86 has no byte shift, and with one
  // C2 ran the expression, conversion included, as the Vector API's boxed fallback; the expressions
  // are written out because C2 did not inline them from helper methods (same fallback; Q4_0 decode
  // measured 1-2.7 tokens/s either way, 8.9 written out).
  static float dotQ4_0(MemorySegment data, long rowByte, float[] x, int xOffset, int cols) {
    // four blocks per iteration where one load holds a block, each scaled into its own accumulator,
    // as dotQ8_0 (1.3-1.5x, 1 thread, AVX-512)
    FloatVector acc0 = FloatVector.zero(F);
    FloatVector acc1 = FloatVector.zero(F);
    FloatVector acc2 = FloatVector.zero(F);
    FloatVector acc3 = FloatVector.zero(F);
    int c = 0;
    if (Q4_ONE_LOAD) {
      for (; c + 128 <= cols; c += 128) {
        long block = rowByte + 18L * (c >> 5);
        int xc = xOffset + c;
        ByteVector q0 = ByteVector.fromMemorySegment(B, data, block + 2, LE);
        ByteVector q1 = ByteVector.fromMemorySegment(B, data, block + 20, LE);
        ByteVector q2 = ByteVector.fromMemorySegment(B, data, block + 38, LE);
        ByteVector q3 = ByteVector.fromMemorySegment(B, data, block + 56, LE);
        FloatVector s0 = ((FloatVector) q0.and((byte) 0x0f).sub((byte) 8).convertShape(VectorOperators.B2F, F, 0))
            .mul(FloatVector.fromArray(F, x, xc));
        FloatVector s1 = ((FloatVector) q1.and((byte) 0x0f).sub((byte) 8).convertShape(VectorOperators.B2F, F, 0))
            .mul(FloatVector.fromArray(F, x, xc + 32));
        FloatVector s2 = ((FloatVector) q2.and((byte) 0x0f).sub((byte) 8).convertShape(VectorOperators.B2F, F, 0))
            .mul(FloatVector.fromArray(F, x, xc + 64));
        FloatVector s3 = ((FloatVector) q3.and((byte) 0x0f).sub((byte) 8).convertShape(VectorOperators.B2F, F, 0))
            .mul(FloatVector.fromArray(F, x, xc + 96));
        s0 = ((FloatVector) q0.and((byte) 0xf0).lanewise(VectorOperators.XOR, (byte) 0x80)
            .convertShape(VectorOperators.B2F, F, 0)).fma(FloatVector.fromArray(F, x, xc + 16).mul(0.0625f), s0);
        s1 = ((FloatVector) q1.and((byte) 0xf0).lanewise(VectorOperators.XOR, (byte) 0x80)
            .convertShape(VectorOperators.B2F, F, 0)).fma(FloatVector.fromArray(F, x, xc + 48).mul(0.0625f), s1);
        s2 = ((FloatVector) q2.and((byte) 0xf0).lanewise(VectorOperators.XOR, (byte) 0x80)
            .convertShape(VectorOperators.B2F, F, 0)).fma(FloatVector.fromArray(F, x, xc + 80).mul(0.0625f), s2);
        s3 = ((FloatVector) q3.and((byte) 0xf0).lanewise(VectorOperators.XOR, (byte) 0x80)
            .convertShape(VectorOperators.B2F, F, 0)).fma(FloatVector.fromArray(F, x, xc + 112).mul(0.0625f), s3);
        acc0 = s0.fma(FloatVector.broadcast(F, Float.float16ToFloat(data.get(I16_LE, block))), acc0);
        acc1 = s1.fma(FloatVector.broadcast(F, Float.float16ToFloat(data.get(I16_LE, block + 18))), acc1);
        acc2 = s2.fma(FloatVector.broadcast(F, Float.float16ToFloat(data.get(I16_LE, block + 36))), acc2);
        acc3 = s3.fma(FloatVector.broadcast(F, Float.float16ToFloat(data.get(I16_LE, block + 54))), acc3);
      }
    }
    for (; c < cols; c += 32) {
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
      acc0 = sum.fma(FloatVector.broadcast(F, Float.float16ToFloat(data.get(I16_LE, block))), acc0);
    }
    return acc0.add(acc1).add(acc2.add(acc3)).reduceLanes(VectorOperators.ADD);
  }
}
