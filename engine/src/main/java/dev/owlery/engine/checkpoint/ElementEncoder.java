package dev.owlery.engine.checkpoint;

import dev.owlery.engine.tensor.DType;
import dev.owlery.engine.tensor.Tensor;
import dev.owlery.engine.tensor.WeightFormat;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Writes tensor elements as little-endian bytes of a target dtype: floats as F32, F16 or BF16
 * (both rounded to nearest, ties to even), integers as I64, I32 or U8 (range-checked).
 */
final class ElementEncoder {

  private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final ValueLayout.OfLong I64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  private ElementEncoder() {}

  /** Float to IEEE half bits, round to nearest even (Java's own conversion). */
  static short toF16(float value) {
    return Float.floatToFloat16(value);
  }

  /** Stores {@code value} as element {@code index} of {@code out}, a floating {@code dtype}. */
  static void putFloat(MemorySegment out, long index, DType dtype, float value) {
    switch (dtype) {
      case F32 -> out.setAtIndex(F32, index, value);
      case F16 -> out.setAtIndex(I16, index, toF16(value));
      case BF16 -> out.setAtIndex(I16, index, WeightFormat.toBf16(value));
      case I64, I32, U8, Q8_0, Q4_0 -> throw new IllegalArgumentException("cannot store floats as " + dtype);
    }
  }

  /** Stores {@code value} as element {@code index} of {@code out}, an integer {@code dtype}. */
  static void putLong(MemorySegment out, long index, DType dtype, long value, String name) {
    switch (dtype) {
      case I64 -> out.setAtIndex(I64, index, value);
      case I32 -> {
        if (value != (int) value) {
          throw new IllegalArgumentException("tensor '%s': value %d does not fit I32".formatted(name, value));
        }
        out.setAtIndex(I32, index, (int) value);
      }
      case U8 -> {
        if (value < 0 || value > 255) {
          throw new IllegalArgumentException("tensor '%s': value %d does not fit U8".formatted(name, value));
        }
        out.set(ValueLayout.JAVA_BYTE, index, (byte) value);
      }
      case F32, F16, BF16, Q8_0, Q4_0 -> throw new IllegalArgumentException("cannot store integers as " + dtype);
    }
  }

  /** Copies element {@code index} of {@code from} into element {@code outIndex} of {@code out} as {@code dtype}. */
  static void putElement(Tensor from, long index, MemorySegment out, long outIndex, DType dtype) {
    if (dtype.isFloating()) {
      putFloat(out, outIndex, dtype, from.getFloat(index));
    } else {
      putLong(out, outIndex, dtype, from.getLong(index), from.name());
    }
  }
}
