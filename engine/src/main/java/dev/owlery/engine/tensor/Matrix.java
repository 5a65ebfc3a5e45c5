package dev.owlery.engine.tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * A 2-D window onto float weights in place: {@code rows x cols} elements, row {@code r} starting
 * at element {@code offset + r * rowStride} of {@code data}. Slicing rows (column-parallel
 * layers) or columns (row-parallel layers) makes a new view without copying a byte.
 */
public record Matrix(
    String name, MemorySegment data, DType dtype, int rows, int cols, long rowStride, long offset) {

  private static final ValueLayout.OfFloat F32_LE =
      ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final ValueLayout.OfShort I16_LE =
      ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  public Matrix {
    if (!dtype.isFloating()) {
      throw new IllegalArgumentException("matrix '%s' must be F32, F16 or BF16, not %s".formatted(name, dtype));
    }
    if (rows < 0 || cols < 0 || rowStride < cols || offset < 0) {
      throw new IllegalArgumentException(
          "matrix '%s': bad view rows=%d cols=%d rowStride=%d offset=%d"
              .formatted(name, rows, cols, rowStride, offset));
    }
    long lastElement = rows == 0 ? offset : offset + (rows - 1) * rowStride + cols;
    if (lastElement * dtype.byteSize() > data.byteSize()) {
      throw new IllegalArgumentException(
          "matrix '%s': view of %dx%d (stride %d, offset %d) runs past the %d bytes of its data"
              .formatted(name, rows, cols, rowStride, offset, data.byteSize()));
    }
  }

  /** Rows {@code [from, to)}: the output-feature slice of a column-parallel layer. */
  public Matrix rowSlice(int from, int to) {
    if (from < 0 || to > rows || from > to) {
      throw new IllegalArgumentException(
          "matrix '%s': row slice [%d, %d) outside %d rows".formatted(name, from, to, rows));
    }
    return new Matrix(name, data, dtype, to - from, cols, rowStride, offset + from * rowStride);
  }

  /** Columns {@code [from, to)}: the input-feature slice of a row-parallel layer. */
  public Matrix colSlice(int from, int to) {
    if (from < 0 || to > cols || from > to) {
      throw new IllegalArgumentException(
          "matrix '%s': column slice [%d, %d) outside %d columns".formatted(name, from, to, cols));
    }
    return new Matrix(name, data, dtype, rows, to - from, rowStride, offset + from);
  }

  /** Element (r, c) widened to float; the plain accessor the scalar kernels use. */
  public float get(int r, int c) {
    long index = offset + r * rowStride + c;
    return switch (dtype) {
      case F32 -> data.getAtIndex(F32_LE, index);
      case F16 -> Float.float16ToFloat(data.getAtIndex(I16_LE, index));
      case BF16 -> Float.intBitsToFloat((data.getAtIndex(I16_LE, index) & 0xffff) << 16);
      case I64, I32, U8 -> throw new AssertionError("checked in the constructor");
    };
  }

  /** Byte offset of element (r, 0) within {@code data}. */
  public long rowByteOffset(int r) {
    return (offset + r * rowStride) * dtype.byteSize();
  }
}
