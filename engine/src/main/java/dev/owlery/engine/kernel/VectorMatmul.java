package dev.owlery.engine.kernel;

import dev.owlery.engine.tensor.DType;
import dev.owlery.engine.tensor.Matrix;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * The matmul inner loops over weights read in place from their segment, one method per weight
 * dtype: a scalar head up to the load alignment, a vector body with several accumulators, and a
 * scalar tail. Calls of four tokens or more (prefill) go to {@link TileKernels}, which widens a
 * block of rows once and runs register tiles of tokens by rows; fewer tokens (decode) go to
 * {@link MatvecKernels}. Measured by {@code owlery bench} (BenchCommand), which reports GFLOP/s as
 * a ratio to {@link ScalarKernels} in the same run.
 *
 * <p>16-bit weights are loaded as int lanes, each holding an even-indexed element (low half) and
 * the next odd one (high half); shifts and masks widen both halves without cross-lane shuffles,
 * and the activations are pre-arranged to match ({@link #permuteForPairs}, once per call). F16
 * widening uses the exponent-rebias trick: the 15 magnitude bits shifted to float position read as
 * the exact value of every finite half times 2^-112, and {@link #F16_EXPONENT_LIFT} added to the
 * exponent makes that w * 2^-80, a normal float for every half whose exponent field is not zero.
 * The factor 2^80 is moved into the pre-arranged activations (and back out of the sums when
 * activations are large, {@link #f16RebiasShift}), which saves a multiply per vector. A half with a
 * zero exponent field (zero or subnormal, value m * 2^-24) lifts to (1 + m/1024) * 2^-95, signed,
 * not to its value: rows widened into buffers for the tiles and panels correct each lane
 * ({@link #evenF16Normal}); the dot products, where those lanes' extra operations measured
 * 0.55-0.65x the decode speed, take the lifted values as they are and add the difference's products
 * afterwards from a list of where those halves are ({@link ZeroExponentHalves}). Either way no FMA
 * takes a subnormal operand, which on Intel cores costs a microcode assist. F16
 * infinities and NaNs in weights are not supported (they widen to finite values >= 65536); no
 * trained checkpoint has them. Compared with widening through a short-to-int lane conversion this
 * measured 1.4-1.7x the in-cache throughput on AVX2 (BenchCommand, same run).
 *
 * <p>Decode ({@link MatvecKernels}) reads F16 and BF16 weights four rows per kernel call and the
 * other dtypes one row per call. On the Intel AMX host four F16 rows with the widening written out in
 * the kernel measured 1.14-1.25x one row at a time (weights from DRAM, one and two threads); four
 * Q8_0 rows 0.65-0.85x, whose loop is bound by its instructions (int8 widening) rather than by
 * memory. Earlier, on AVX-512 (Zen 5), four rows at once through the widening helpers measured
 * 0.55-0.75x (F16) and 0.55-0.85x (Q8_0), though on an AVX2 host 1.12x (F16) and 1.42x (F32); four
 * rows through the helpers exceed what C2 inlines (see {@link MatvecKernels#dotF16Rows4}), so those
 * figures may have been of boxed vectors. Zen has not been measured with the written-out kernel.
 * Prefill through {@link TileKernels} (widened block, 2-row by 4-token tiles) measured 1.41x (F16),
 * 1.16x (BF16) and 1.27x (F32) the previous one-row by four-token kernels on 2048x2048 with 128
 * tokens, one thread, same run; at 8 tokens the two are level.
 */
final class VectorMatmul {

  static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
  static final VectorSpecies<Integer> I = IntVector.SPECIES_PREFERRED;
  /**
   * Whether Q4_0 has vector kernels: a load of B holds exactly one float vector's worth of nibble
   * pairs. Where L is 4 (128-bit vectors) Q4_0 rows are read through {@link Matrix#get} instead.
   */
  static final boolean Q4_VECTORS = F.length() >= 8;

  /** One load of int8 weights: L lanes (one float vector's worth), or 8 where L is 4 (no 32-bit shape). */
  static final VectorSpecies<Byte> B = VectorSpecies.of(byte.class, VectorShape.forBitSize(Math.max(64, F.length() * 8)));
  private static final int L = F.length();
  static final int ROW_BLOCK = 16;
  private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
  private static final ValueLayout.OfShort I16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(LE);
  static final int F16_SIGN_AND_MAGNITUDE = 0x8fffe000;
  /**
   * Exponent added to the shifted F16 bits: with 32, the smallest F16 subnormal (2^-24) widens to
   * 2^-104, a normal float, and every half with a non-zero exponent field to its value times 2^-80.
   * 32 is one bit above the half's five exponent bits, so the add is an OR, which C2 merges with
   * the AND before it into one {@code vpternlogd} (in L2, 1.10x the decode loop's throughput of an
   * add of 16).
   */
  static final int F16_EXPONENT_LIFT = 32;
  /** Lifted halves below this magnitude, and only they, had a zero exponent field: 2^-94. */
  private static final float F16_SUBNORMAL_BELOW = Math.scalb(1f, F16_EXPONENT_LIFT - 126);
  private static final int F16_SUBNORMAL_OFFSET_BITS = Float.floatToRawIntBits(F16_SUBNORMAL_BELOW);
  /** Scale of the F16 weights as the kernels widen them (w * 2^-80); their activations carry the 2^80. */
  static final int F16_REBIAS_EXPONENT = 112 - F16_EXPONENT_LIFT;
  private static final float F16_UNBIASED = Math.scalb(1f, -F16_REBIAS_EXPONENT);

  private VectorMatmul() {}

  static {
    switch (F.vectorBitSize()) {
      case 128, 256, 512 -> { }
      default -> throw new IllegalStateException("unsupported vector width " + F.vectorBitSize() + " bits");
    }
  }

  /** The vector shape in use, for {@link Kernels#name()}. */
  static VectorShape shape() {
    return F.vectorShape();
  }

  /**
   * {@code out[t, r] = w[r, :] . x[t, :]} for rows {@code [from, to)} and every token. For F16/BF16
   * weights {@code x} must be in pair order ({@link #permuteForPairs} with {@code head}), and for F16
   * calls of fewer than {@link TileKernels#TOKENS} tokens {@code zeros} lists w's zero-exponent
   * halves at that head (null otherwise). With
   * {@code xT} (x transposed by {@link PanelKernels#transposeBlocks}, for {@link PanelKernels#MIN_TOKENS}
   * tokens or more) the outer-product kernels run; otherwise the tile or matrix-vector kernels.
   */
  static void rows(Matrix w, ZeroExponentHalves zeros, float[] x, int xOffset, float[] xT, float[] out, int outOffset,
      int numTokens, int from, int to, int head, float outScale) {
    int cols = w.cols();
    int rows = w.rows();
    if (xT != null) {
      PanelKernels.rows(w, xT, numTokens, out, outOffset, from, to, head, outScale);
      return;
    }
    if (numTokens >= TileKernels.TOKENS) {
      for (int blockStart = from; blockStart < to; blockStart += ROW_BLOCK) {
        int blockEnd = Math.min(to, blockStart + ROW_BLOCK);
        TileKernels.rowBlock(w, x, xOffset, out, outOffset, numTokens, blockStart, blockEnd, head, outScale);
      }
      return;
    }
    for (int blockStart = from; blockStart < to; blockStart += ROW_BLOCK) {
      int blockEnd = Math.min(to, blockStart + ROW_BLOCK);
      for (int t = 0; t < numTokens; t++) {
        int r = blockStart;
        if (w.dtype() == DType.F16 || w.dtype() == DType.BF16) {
          for (; r + 3 < blockEnd; r += 4) {
            rows4(w, zeros, r, x, xOffset + t * cols, head, out, outOffset + t * rows + r, outScale);
          }
        }
        for (; r < blockEnd; r++) {
          out[outOffset + t * rows + r] = dot(w, zeros, r, x, xOffset + t * cols, head) * outScale;
        }
      }
    }
  }

  /**
   * Rows r to r + 3 of 16-bit weights against one activation row, into out[outIndex] and the three
   * after it; zeros as for {@link #rows} (F16 only).
   */
  private static void rows4(Matrix w, ZeroExponentHalves zeros, int r, float[] x, int xOffset, int head,
      float[] out, int outIndex, float outScale) {
    if (w.dtype() == DType.F16) {
      MatvecKernels.dotF16Rows4(w.data(), w.rowByteOffset(r), w.rowStrideBytes(), x, xOffset, w.cols(), head,
          out, outIndex);
      for (int k = 0; k < 4; k++) {
        out[outIndex + k] += zeros.correction(w, r + k, x, xOffset);
      }
    } else {
      MatvecKernels.dotBF16Rows4(w.data(), w.rowByteOffset(r), w.rowStrideBytes(), x, xOffset, w.cols(), head,
          out, outIndex);
    }
    for (int k = 0; k < 4; k++) {
      out[outIndex + k] *= outScale;
    }
  }

  private static float dot(Matrix w, ZeroExponentHalves zeros, int r, float[] x, int xOffset, int head) {
    MemorySegment data = w.data();
    long rowByte = w.rowByteOffset(r);
    int cols = w.cols();
    return switch (w.dtype()) {
      case F32 -> MatvecKernels.dotF32(data, rowByte, x, xOffset, cols, head);
      case F16 -> MatvecKernels.dotF16(data, rowByte, x, xOffset, cols, head) + zeros.correction(w, r, x, xOffset);
      case BF16 -> MatvecKernels.dotBF16(data, rowByte, x, xOffset, cols, head);
      case Q8_0 -> MatvecKernels.dotQ8_0(data, rowByte, x, xOffset, cols);
      case Q4_0 -> Q4_VECTORS ? MatvecKernels.dotQ4_0(data, rowByte, x, xOffset, cols) : widenedDot(w, r, x, xOffset);
      case I64, I32, U8 -> throw new AssertionError("Matrix rejects non-weight dtypes");
    };
  }

  /**
   * Elements before the first weight address aligned to {@code loadBytes}, at most {@code cols}; the
   * same for every row of {@code w}, so 0 when rows are not all equally misaligned.
   */
  static int head(Matrix w, int loadBytes) {
    int elementBytes = w.dtype().byteSize();
    if (w.rows() == 0 || (w.rowStride() * elementBytes) % loadBytes != 0) {
      return 0;
    }
    long misalign = Math.floorMod(w.data().address() + w.rowByteOffset(0), (long) loadBytes);
    if (misalign == 0 || misalign % elementBytes != 0) {
      return 0;
    }
    return (int) Math.min(w.cols(), (loadBytes - misalign) / elementBytes);
  }

  /** Bytes of one vector load of 16-bit weights: 2L halves, read as L ints. */
  static int load16Bytes() {
    return I.vectorByteSize();
  }

  /**
   * Copies {@code numTokens} activation rows into the even/odd order the 16-bit kernels read: after
   * {@code head} elements, each block of 2L is stored as its L even-indexed then its L odd-indexed
   * elements (an int lane of weights holds an even element low and an odd one high); the tail is copied.
   */
  static void permuteForPairs(float[] x, int xOffset, int cols, int numTokens, int head, float scale,
      float[] permuted) {
    for (int t = 0; t < numTokens; t++) {
      int src = xOffset + t * cols;
      int dst = t * cols;
      for (int c = 0; c < cols; c++) {
        permuted[dst + c] = x[src + c] * scale;
      }
      for (int c = head; c + 2 * L <= cols; c += 2 * L) {
        for (int i = 0; i < L; i++) {
          permuted[dst + c + i] = x[src + c + 2 * i] * scale;
          permuted[dst + c + L + i] = x[src + c + 2 * i + 1] * scale;
        }
      }
    }
  }

  /**
   * The column of x that position k of the pair order holds, where columns {@code [pairsFrom,
   * pairedEnd)} (whole blocks of 2L) are paired and the others stay in place.
   */
  static int pairedColumn(int k, int pairsFrom, int pairedEnd) {
    if (k < pairsFrom || k >= pairedEnd) {
      return k;
    }
    int i = (k - pairsFrom) % (2 * L);
    return k - i + (i < L ? 2 * i : 2 * (i - L) + 1);
  }

  /** The position in pair order of column c of x: the inverse of {@link #pairedColumn}. */
  static int pairPosition(int c, int pairsFrom, int pairedEnd) {
    if (c < pairsFrom || c >= pairedEnd) {
      return c;
    }
    int i = (c - pairsFrom) % (2 * L);
    return c - i + (i % 2 == 0 ? i / 2 : L + i / 2);
  }

  /**
   * Exponent s such that the F16 kernels may scale activations by 2^(rebias - s) without overflow
   * (their widened weights are w * 2^-rebias, rebias {@value #F16_REBIAS_EXPONENT}) and scale the results back by 2^s:
   * 0 unless some |x| >= 2^(127 - rebias). Both scalings are powers of two, so the products are exact.
   */
  static int f16RebiasShift(float[] x, int xOffset, int length, int rebiasExponent) {
    return f16RebiasShift(maxMagnitudeBits(x, xOffset, length), rebiasExponent);
  }

  /** {@link #f16RebiasShift(float[], int, int, int)} of activations whose {@link #maxMagnitudeBits} are given. */
  static int f16RebiasShift(int maxMagnitudeBits, int rebiasExponent) {
    float maxAbs = Float.intBitsToFloat(maxMagnitudeBits);
    return Float.isFinite(maxAbs) ? Math.max(0, Math.getExponent(maxAbs) - (126 - rebiasExponent)) : 0;
  }

  /**
   * The largest of the magnitudes' bits as ints, whose order is that of the floats (NaN and infinity
   * above every finite value); the maximum of two ranges' is that of both.
   */
  static int maxMagnitudeBits(float[] x, int xOffset, int length) {
    // in vectors of maxima: 0.07 ns per element against 0.29 for a scalar loop of Math.max
    IntVector max0 = IntVector.zero(I);
    IntVector max1 = IntVector.zero(I);
    int i = 0;
    for (; i + 2 * L <= length; i += 2 * L) {
      max0 = max0.max(FloatVector.fromArray(F, x, xOffset + i).reinterpretAsInts().and(Integer.MAX_VALUE));
      max1 = max1.max(FloatVector.fromArray(F, x, xOffset + i + L).reinterpretAsInts().and(Integer.MAX_VALUE));
    }
    int maxBits = max0.max(max1).reduceLanes(VectorOperators.MAX);
    for (; i < length; i++) {
      maxBits = Math.max(maxBits, Float.floatToRawIntBits(x[xOffset + i]) & Integer.MAX_VALUE);
    }
    return maxBits;
  }

  /** One weight widened as the kernels' vector bodies do: F16 as {@code w * 2^-80} (exact), BF16 as is. */
  static float scalar16(MemorySegment data, long byteOffset, boolean f16) {
    short bits = data.get(I16_LE, byteOffset);
    return f16 ? Float.float16ToFloat(bits) * F16_UNBIASED : Float.intBitsToFloat((bits & 0xffff) << 16);
  }

  // Widening of the two halves of each int lane. Separate methods per dtype (no branch on the
  // dtype inside a loop): a vector value merged from two branches is not kept in registers by C2.

  /**
   * Even-indexed F16 weights (low halves) lifted to normal floats: w * 2^-80, except where the half's
   * exponent field is zero ({@link ZeroExponentHalves} corrects those; {@link #f16LiftError}).
   * Arithmetic >> 3 keeps the sign in bit 31 and puts the magnitude in bits 27..13, the AND clears
   * 30..28 and the odd half's bits, the OR lifts the exponent.
   */
  static FloatVector evenF16Lifted(IntVector pairs) {
    return pairs.lanewise(VectorOperators.LSHL, 16)
        .lanewise(VectorOperators.ASHR, 3)
        .lanewise(VectorOperators.AND, F16_SIGN_AND_MAGNITUDE)
        .lanewise(VectorOperators.OR, F16_EXPONENT_LIFT << 23)
        .reinterpretAsFloats();
  }

  /** Odd-indexed F16 weights (high halves) lifted as {@link #evenF16Lifted}. */
  static FloatVector oddF16Lifted(IntVector pairs) {
    return pairs.lanewise(VectorOperators.ASHR, 3)
        .lanewise(VectorOperators.AND, F16_SIGN_AND_MAGNITUDE)
        .lanewise(VectorOperators.OR, F16_EXPONENT_LIFT << 23)
        .reinterpretAsFloats();
  }

  /**
   * Even-indexed F16 weights times 2^-80, every one a normal float (see {@link #normalF16}): for
   * rows widened into a buffer, where a handful more operations per vector are paid once per row
   * and reused by every token. The dot products keep {@link #evenF16}: in a decode loop the same
   * operations measured 0.55-0.65x the tokens/s, more than the subnormal operands cost there.
   */
  static FloatVector evenF16Normal(IntVector pairs) {
    return normalF16(pairs.lanewise(VectorOperators.LSHL, 16)
        .lanewise(VectorOperators.ASHR, 3)
        .lanewise(VectorOperators.AND, F16_SIGN_AND_MAGNITUDE));
  }

  /** Odd-indexed F16 weights times 2^-80, as {@link #evenF16Normal}. */
  static FloatVector oddF16Normal(IntVector pairs) {
    return normalF16(pairs.lanewise(VectorOperators.ASHR, 3).lanewise(VectorOperators.AND, F16_SIGN_AND_MAGNITUDE));
  }

  /**
   * Halves shifted to float position (sign, 5 exponent bits at 27..23, 10 mantissa bits) to floats
   * of value {@code w * 2^-80}, none subnormal. Read as floats these bits are {@code w * 2^-112},
   * a subnormal float for every subnormal half (|w| < 2^-14, a few per thousand trained weights),
   * and an FMA with a subnormal operand takes a microcode assist on Intel cores (the 1.1B's
   * 128-token prefill: 38-39 tokens/s on one thread, 50 with this). Normal halves gain the lift in
   * the exponent; a subnormal one (value m * 2^-24), whose lifted bits read
   * (1 + m/1024) * 2^(lift - 127), is twice that minus 2^(lift - 126), signed as the half.
   */
  private static FloatVector normalF16(IntVector bits) {
    FloatVector lifted = bits.lanewise(VectorOperators.OR, F16_EXPONENT_LIFT << 23).reinterpretAsFloats();
    // subnormal halves, and only they, lift below 2^(lift - 126)
    VectorMask<Float> subnormal = lifted.lanewise(VectorOperators.ABS).compare(VectorOperators.LT, F16_SUBNORMAL_BELOW);
    FloatVector offset = bits.and(0x80000000).lanewise(VectorOperators.XOR, 0x80000000 | F16_SUBNORMAL_OFFSET_BITS)
        .reinterpretAsFloats();
    return lifted.blend(lifted.fma(FloatVector.broadcast(lifted.species(), 2f), offset), subnormal);
  }

  /**
   * What a dot product must add, per unit of activation, for an F16 weight of bits {@code bits}
   * widened by {@link #evenF16Lifted}: its value times 2^-80 minus the lifted float; 0 unless the
   * exponent field is zero, where it is w * 2^-81 - 2^-95, signed as the half (exact, normal).
   */
  static float f16LiftError(short bits) {
    if ((bits & 0x7c00) != 0) {
      return 0f;
    }
    float value = Float.float16ToFloat(bits) * F16_UNBIASED;
    float lifted = Float.intBitsToFloat((((bits & 0x8000) << 16) | ((bits & 0x7fff) << 13)) + (F16_EXPONENT_LIFT << 23));
    return value - lifted;
  }

  /** {@code B.length()} consecutive int8 weights from {@code byteOffset}: L, or 8 when L is 4. */
  static ByteVector loadQ8(MemorySegment data, long byteOffset) {
    return ByteVector.fromMemorySegment(B, data, byteOffset, LE);
  }

  /**
   * The first L lanes of loaded int8 weights, widened to floats (exact). The part number is a
   * literal: C2 intrinsifies a conversion only when it is a compile-time constant, and otherwise
   * runs the Vector API's boxed Java fallback (measured 8x slower decode).
   */
  static FloatVector widenQ8Low(ByteVector q) {
    return (FloatVector) q.convertShape(VectorOperators.B2F, F, 0);
  }

  /** Row {@code r} of {@code w} against x through {@link Matrix#get}: the path of dtypes without vector kernels here. */
  static float widenedDot(Matrix w, int r, float[] x, int xOffset) {
    float sum = 0f;
    for (int c = 0; c < w.cols(); c++) {
      sum += w.get(r, c) * x[xOffset + c];
    }
    return sum;
  }

  /** Lanes L to 2L of loaded int8 weights (only where L is 4 and a load holds 8), widened to floats. */
  static FloatVector widenQ8High(ByteVector q) {
    return (FloatVector) q.convertShape(VectorOperators.B2F, F, 1);
  }

  /** Even-indexed BF16 weights: the upper half of an f32. */
  static FloatVector evenBF16(IntVector pairs) {
    return pairs.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
  }

  /** Odd-indexed BF16 weights. */
  static FloatVector oddBF16(IntVector pairs) {
    return pairs.lanewise(VectorOperators.AND, 0xffff0000).reinterpretAsFloats();
  }
}
