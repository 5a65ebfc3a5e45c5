package dev.owlery.engine.tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * A named, typed, row-major tensor whose bytes live in a memory segment (usually a read-only
 * mapping of a checkpoint file). The segment holds exactly {@code numElements * dtype.byteSize}
 * bytes, little-endian.
 */
public record Tensor(String name, DType dtype, long[] shape, MemorySegment data) {

  private static final ValueLayout.OfFloat F32_LE =
      ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final ValueLayout.OfShort I16_LE =
      ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final ValueLayout.OfLong I64_LE =
      ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final ValueLayout.OfInt I32_LE =
      ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  public Tensor {
    shape = shape.clone();
    if (dtype.blockSize() != 1) {
      throw new IllegalArgumentException("tensor '%s': %s exists only as a weight matrix".formatted(name, dtype));
    }
    long expected = Math.multiplyExact(numElements(shape), dtype.byteSize());
    if (data.byteSize() != expected) {
      throw new IllegalArgumentException(
          "tensor '%s' %s%s needs %d bytes, the segment has %d"
              .formatted(name, dtype, Arrays.toString(shape), expected, data.byteSize()));
    }
  }

  /** Number of elements of a shape (1 for a scalar), overflow-checked. */
  public static long numElements(long[] shape) {
    long n = 1;
    for (long d : shape) {
      n = Math.multiplyExact(n, d);
    }
    return n;
  }

  public long numElements() {
    return numElements(shape);
  }

  @Override
  public long[] shape() {
    return shape.clone();
  }

  public int rank() {
    return shape.length;
  }

  /** Size of dimension {@code i} as an int (tensor dimensions we use always fit). */
  public int dim(int i) {
    return Math.toIntExact(shape[i]);
  }

  /** Element {@code index} (flat, row-major) widened to float, for F32/F16/BF16 tensors. */
  public float getFloat(long index) {
    return switch (dtype) {
      case F32 -> data.getAtIndex(F32_LE, index);
      case F16 -> Float.float16ToFloat(data.getAtIndex(I16_LE, index));
      case BF16 -> Float.intBitsToFloat((data.getAtIndex(I16_LE, index) & 0xffff) << 16);
      case I64 -> data.getAtIndex(I64_LE, index);
      case I32 -> data.getAtIndex(I32_LE, index);
      case U8 -> data.get(ValueLayout.JAVA_BYTE, index) & 0xff;
      case Q8_0, Q4_0 -> throw new AssertionError("tensors are never block-quantized");
    };
  }

  /** Element {@code index} of an integer tensor (I64/I32/U8). */
  public long getLong(long index) {
    return switch (dtype) {
      case I64 -> data.getAtIndex(I64_LE, index);
      case I32 -> data.getAtIndex(I32_LE, index);
      case U8 -> data.get(ValueLayout.JAVA_BYTE, index) & 0xff;
      case F32, F16, BF16, Q8_0, Q4_0 -> throw new IllegalStateException(
          "tensor '%s' is %s, not an integer tensor".formatted(name, dtype));
    };
  }

  /** All elements widened to a new float array (for small tensors and tests, not weights). */
  public float[] toFloatArray() {
    float[] out = new float[Math.toIntExact(numElements())];
    for (int i = 0; i < out.length; i++) {
      out[i] = getFloat(i);
    }
    return out;
  }

  /** All elements of an integer tensor as a new long array. */
  public long[] toLongArray() {
    long[] out = new long[Math.toIntExact(numElements())];
    for (int i = 0; i < out.length; i++) {
      out[i] = getLong(i);
    }
    return out;
  }

  /** A 2-D view of this tensor: the last dimension is the columns, the rest are rows. */
  public Matrix asMatrix() {
    if (!dtype.isFloating()) {
      throw new IllegalStateException("tensor '%s' is %s, not a float matrix".formatted(name, dtype));
    }
    long cols = shape.length == 0 ? 1 : shape[shape.length - 1];
    long rows = cols == 0 ? 0 : numElements() / cols;
    return new Matrix(name, data, dtype, Math.toIntExact(rows), Math.toIntExact(cols), cols, 0);
  }

  @Override
  public String toString() {
    return "Tensor[%s %s%s]".formatted(name, dtype, Arrays.toString(shape));
  }
}
