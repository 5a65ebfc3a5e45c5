package dev.owlery.engine.onednn;

import dev.owlery.engine.tensor.Matrix;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * float32 to bfloat16 as PyTorch's {@code tensor.to(torch.bfloat16)} does it: round to nearest,
 * ties to even, overflow to infinity, NaN kept NaN (quiet, sign kept).
 */
final class Bf16 {

  private static final VectorSpecies<Float> FLOATS = FloatVector.SPECIES_PREFERRED;
  private static final VectorSpecies<Integer> INTS = IntVector.SPECIES_PREFERRED;
  private static final VectorSpecies<Short> SHORTS =
      ShortVector.SPECIES_PREFERRED.withShape(VectorShape.forBitSize(INTS.vectorBitSize() / 2));
  private static final ValueLayout.OfShort I16_LE =
      ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final ValueLayout.OfFloat F32_LE =
      ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  private Bf16() {}

  /** One value's bfloat16 bits. */
  static short round(float value) {
    int bits = Float.floatToRawIntBits(value);
    if (Float.isNaN(value)) {
      return (short) ((bits >>> 16) | 0x40);
    }
    return (short) ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16);
  }

  /** {@code dst[dstOffset + i] = round(src[srcOffset + i])} for {@code i < length}, a vector at a time. */
  static void round(float[] src, int srcOffset, short[] dst, int dstOffset, int length) {
    int lanes = FLOATS.length();
    int i = 0;
    for (; i <= length - lanes; i += lanes) {
      FloatVector v = FloatVector.fromArray(FLOATS, src, srcOffset + i);
      IntVector bits = v.reinterpretAsInts();
      IntVector high = bits.lanewise(VectorOperators.LSHR, 16);
      IntVector rounded = bits.add(0x7fff).add(high.and(1)).lanewise(VectorOperators.LSHR, 16);
      VectorMask<Integer> nan = v.test(VectorOperators.IS_NAN).cast(INTS);
      rounded = rounded.blend(high.or(0x40), nan);
      rounded.convertShape(VectorOperators.I2S, SHORTS, 0).reinterpretAsShorts().intoArray(dst, dstOffset + i);
    }
    for (; i < length; i++) {
      dst[dstOffset + i] = round(src[srcOffset + i]);
    }
  }

  /**
   * The weights of {@code w} as a row-major {@code rows x cols} BF16 copy in {@code arena}, each
   * element rounded from its exact float32 value (F16, Q8_0 and Q4_0 widen exactly to float32).
   */
  static MemorySegment copy(Matrix w, Arena arena) {
    int rows = w.rows();
    int cols = w.cols();
    MemorySegment copy = arena.allocate((long) rows * cols * Short.BYTES, 64);
    float[] row = new float[cols];
    short[] rounded = new short[cols];
    MemorySegment data = w.data();
    for (int r = 0; r < rows; r++) {
      long base = w.rowByteOffset(r);
      switch (w.dtype()) {
        case F32 -> MemorySegment.copy(data, F32_LE, base, row, 0, cols);
        case F16 -> {
          for (int c = 0; c < cols; c++) {
            row[c] = Float.float16ToFloat(data.get(I16_LE, base + 2L * c));
          }
        }
        case BF16 -> {
          for (int c = 0; c < cols; c++) {
            row[c] = Float.intBitsToFloat((data.get(I16_LE, base + 2L * c) & 0xffff) << 16);
          }
        }
        default -> {
          for (int c = 0; c < cols; c++) {
            row[c] = w.get(r, c);
          }
        }
      }
      round(row, 0, rounded, 0, cols);
      MemorySegment.copy(rounded, 0, copy, I16_LE, (long) r * cols * Short.BYTES, cols);
    }
    return copy;
  }
}
