package dev.owlery.engine.tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * A 2-D window onto weights in place: {@code rows x cols} elements, row {@code r} starting at
 * element {@code offset + r * rowStride} of {@code data}. Slicing rows (column-parallel layers) or
 * columns (row-parallel layers) makes a new view without copying a byte. For a block-quantized
 * dtype ({@link DType#Q8_0}, {@link DType#Q4_0}) the offset, stride and columns are whole blocks, so every row and
 * every column slice starts on a block.
 */
public record Matrix(
    String name, MemorySegment data, DType dtype, int rows, int cols, long rowStride, long offset) {

  private static final ValueLayout.OfFloat F32_LE =
      ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final ValueLayout.OfShort I16_LE =
      ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  public Matrix {
    if (!dtype.isWeight()) {
      throw new IllegalArgumentException("matrix '%s' must be F32, F16, BF16, Q8_0 or Q4_0, not %s".formatted(name, dtype));
    }
    if (rows < 0 || cols < 0 || rowStride < cols || offset < 0) {
      throw new IllegalArgumentException(
          "matrix '%s': bad view rows=%d cols=%d rowStride=%d offset=%d"
              .formatted(name, rows, cols, rowStride, offset));
    }
    int block = dtype.blockSize();
    if (cols % block != 0 || rowStride % block != 0 || offset % block != 0) {
      throw new IllegalArgumentException(
          "matrix '%s': a %s view needs columns, stride and offset in whole blocks of %d, got cols=%d stride=%d offset=%d"
              .formatted(name, dtype, block, cols, rowStride, offset));
    }
    long lastElement = rows == 0 ? offset : offset + (rows - 1) * rowStride + cols;
    if (dtype.bytesOf(lastElement) > data.byteSize()) {
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
      case Q8_0 -> {
        long blockByte = index / 32 * 34;
        float scale = Float.float16ToFloat(data.get(I16_LE, blockByte));
        yield scale * data.get(ValueLayout.JAVA_BYTE, blockByte + 2 + index % 32);
      }
      case Q4_0 -> {
        long blockByte = index / 32 * 18;
        int j = (int) (index % 32);
        int packed = data.get(ValueLayout.JAVA_BYTE, blockByte + 2 + j % 16) & 0xff;
        int q = j < 16 ? packed & 0x0f : packed >>> 4;
        yield Float.float16ToFloat(data.get(I16_LE, blockByte)) * (q - 8);
      }
      case I64, I32, U8 -> throw new AssertionError("checked in the constructor");
    };
  }

  /**
   * Row {@code r} widened to floats into {@code dst[0, cols)}: exactly {@link #get}'s values, read
   * with one bulk copy instead of an access per element (the scalar kernels' loop, and the one that
   * matters where a JVM runs without C2, whose inlining the per-element path needs).
   */
  public void widenRow(int r, float[] dst) {
    long index = offset + r * rowStride;
    switch (dtype) {
      case F32 -> MemorySegment.copy(data, F32_LE, 4 * index, dst, 0, cols);
      case F16, BF16 -> {
        short[] bits = new short[cols];
        MemorySegment.copy(data, I16_LE, 2 * index, bits, 0, cols);
        if (dtype == DType.F16) {
          for (int c = 0; c < cols; c++) {
            dst[c] = Float.float16ToFloat(bits[c]);
          }
        } else {
          for (int c = 0; c < cols; c++) {
            dst[c] = Float.intBitsToFloat((bits[c] & 0xffff) << 16);
          }
        }
      }
      case Q8_0 -> {
        byte[] blocks = new byte[cols / 32 * 34];
        MemorySegment.copy(data, ValueLayout.JAVA_BYTE, index / 32 * 34, blocks, 0, blocks.length);
        for (int b = 0; b < cols / 32; b++) {
          float scale = halfAt(blocks, 34 * b);
          for (int j = 0; j < 32; j++) {
            dst[32 * b + j] = scale * blocks[34 * b + 2 + j];
          }
        }
      }
      case Q4_0 -> {
        byte[] blocks = new byte[cols / 32 * 18];
        MemorySegment.copy(data, ValueLayout.JAVA_BYTE, index / 32 * 18, blocks, 0, blocks.length);
        for (int b = 0; b < cols / 32; b++) {
          float scale = halfAt(blocks, 18 * b);
          for (int j = 0; j < 32; j++) {
            int packed = blocks[18 * b + 2 + j % 16] & 0xff;
            dst[32 * b + j] = scale * ((j < 16 ? packed & 0x0f : packed >>> 4) - 8);
          }
        }
      }
      case I64, I32, U8 -> throw new AssertionError("checked in the constructor");
    }
  }

  /** The little-endian F16 at {@code bytes[i]}, widened. */
  private static float halfAt(byte[] bytes, int i) {
    return Float.float16ToFloat((short) ((bytes[i] & 0xff) | bytes[i + 1] << 8));
  }

  /** Byte offset of element (r, 0) within {@code data}. */
  public long rowByteOffset(int r) {
    return dtype.bytesOf(offset + r * rowStride);
  }

  /** Bytes from one row's start to the next's. */
  public long rowStrideBytes() {
    return dtype.bytesOf(rowStride);
  }
}
