package dev.owlery.engine.tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Locale;
import java.util.stream.IntStream;

/**
 * The form in which a node holds its weight matrices ({@code --weights}): read in place from the
 * file mapping, copied as stored into memory the node owns, or converted once at load time into
 * F16, BF16 or llama.cpp's Q8_0 or Q4_0 in memory the node owns. Only the matrices the layers multiply by
 * are copied or converted (projections, MLP, LM head); embeddings and norm weights stay mapped.
 *
 * <p>Owned memory is the default because decode reads it about twice as fast: on this project's
 * 2-core host the same F16 weights decoded at 2.4 / 7.2 tokens/s (1 / 2 threads) read through the
 * file mapping and at 7.6 / 11.3 copied (owlery bench, same run); the copy is also 64-byte aligned.
 */
public enum WeightFormat {
  /** Read in place from the checkpoint's file mapping, in its own dtype: no memory of the node's own. */
  MAPPED("mapped", null),
  /** The checkpoint's own dtype, copied into 64-byte-aligned memory the node owns. */
  STORED("stored", null),
  F16("f16", DType.F16),
  BF16("bf16", DType.BF16),
  /** Blocks of 32 int8 with one F16 scale, quantized as llama.cpp's {@code quantize_row_q8_0_ref}. */
  Q8_0("q8_0", DType.Q8_0),
  /** Blocks of 32 4-bit weights with one F16 scale, quantized as llama.cpp's {@code quantize_row_q4_0_ref}. */
  Q4_0("q4_0", DType.Q4_0);

  private static final ValueLayout.OfShort I16_LE =
      ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final ValueLayout.OfFloat F32_LE =
      ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  private final String flagName;
  private final DType dtype;

  WeightFormat(String flagName, DType dtype) {
    this.flagName = flagName;
    this.dtype = dtype;
  }

  /** The name {@code --weights} takes: mapped, stored, f16, bf16, q8_0 or q4_0. */
  public String flagName() {
    return flagName;
  }

  /** Parses a {@code --weights} value, any case, naming the choices when it is none of them. */
  public static WeightFormat parse(String value) {
    String v = value.strip().toLowerCase(Locale.ROOT);
    for (WeightFormat f : values()) {
      if (f.flagName.equals(v)) {
        return f;
      }
    }
    throw new IllegalArgumentException(
        "--weights must be one of mapped, stored, f16, bf16, q8_0, q4_0; got \"%s\"".formatted(value));
  }

  /** The dtype {@link #convert} stores {@code view} in. */
  public DType storedDType(Matrix view) {
    return dtype == null || view.cols() % dtype.blockSize() != 0 ? view.dtype() : dtype;
  }

  /**
   * {@code view} in this format: the view itself for {@link #MAPPED}, else a new row-major matrix
   * in {@code arena} (a copy when the dtype is already this format's). A matrix whose columns are
   * not whole Q8_0 blocks is copied as stored (llama.cpp also leaves such tensors unquantized).
   */
  public Matrix convert(Matrix view, Arena arena) {
    if (this == MAPPED) {
      return view;
    }
    DType target = storedDType(view);
    int rows = view.rows();
    int cols = view.cols();
    long rowBytes = target.bytesOf(cols);
    MemorySegment out = arena.allocate(Math.max(1, Math.multiplyExact(rowBytes, (long) rows)), 64);
    if (target == view.dtype()) {
      for (int r = 0; r < rows; r++) {
        MemorySegment.copy(view.data(), view.rowByteOffset(r), out, r * rowBytes, rowBytes);
      }
      return new Matrix(view.name(), out, target, rows, cols, cols, 0);
    }
    IntStream.range(0, rows).parallel().forEach(r -> {
      float[] row = new float[cols];
      view.widenRow(r, row);
      long base = r * rowBytes;
      switch (target) {
        case F16 -> {
          for (int c = 0; c < cols; c++) {
            out.set(I16_LE, base + 2L * c, Float.floatToFloat16(row[c]));
          }
        }
        case BF16 -> {
          for (int c = 0; c < cols; c++) {
            out.set(I16_LE, base + 2L * c, toBf16(row[c]));
          }
        }
        case Q8_0 -> quantizeRowQ8_0(row, out, base);
        case Q4_0 -> quantizeRowQ4_0(row, out, base);
        default -> throw new AssertionError(target);
      }
    });
    return new Matrix(view.name(), out, target, rows, cols, cols, 0);
  }

  /** Bytes a weight tensor takes in this format (its last dimension being the matrix's columns). */
  public long bytesOf(Tensor tensor) {
    long cols = tensor.rank() == 0 ? 1 : tensor.shape()[tensor.rank() - 1];
    DType held = dtype == null || cols % dtype.blockSize() != 0 ? tensor.dtype() : dtype;
    return held.bytesOf(tensor.numElements());
  }

  /**
   * One row into Q8_0 blocks at {@code byteOffset}, with llama.cpp's rounding: per block
   * {@code d = max|x| / 127}, {@code q = roundf(x / d)} (half away from zero) computed as
   * {@code x * (1/d)} with the unrounded d, and d stored as F16.
   */
  static void quantizeRowQ8_0(float[] row, MemorySegment out, long byteOffset) {
    for (int b = 0; b * 32 < row.length; b++) {
      float amax = 0f;
      for (int j = 0; j < 32; j++) {
        amax = Math.max(amax, Math.abs(row[b * 32 + j]));
      }
      float d = amax / 127f;
      float id = d != 0f ? 1f / d : 0f;
      long block = byteOffset + 34L * b;
      out.set(I16_LE, block, Float.floatToFloat16(d));
      for (int j = 0; j < 32; j++) {
        out.set(ValueLayout.JAVA_BYTE, block + 2 + j, (byte) roundHalfAway(row[b * 32 + j] * id));
      }
    }
  }

  /**
   * One row into Q4_0 blocks at {@code byteOffset}, with llama.cpp's rounding: per block {@code d} is
   * the value of largest magnitude (the first such) divided by -8, {@code q = min(15, trunc(x / d +
   * 8.5))} with {@code x * (1/d) + 8.5} computed without rounding the product (llama.cpp's compiled
   * reference contracts it into one FMA; its Python quantizer computes it in double, as here); weight
   * j of the block goes in the low nibble of byte j, weight 16 + j in the high one.
   */
  static void quantizeRowQ4_0(float[] row, MemorySegment out, long byteOffset) {
    for (int b = 0; b * 32 < row.length; b++) {
      float amax = 0f;
      float max = 0f;
      for (int j = 0; j < 32; j++) {
        float v = row[b * 32 + j];
        if (amax < Math.abs(v)) {
          amax = Math.abs(v);
          max = v;
        }
      }
      float d = max / -8f;
      float id = d != 0f ? 1f / d : 0f;
      long block = byteOffset + 18L * b;
      out.set(I16_LE, block, Float.floatToFloat16(d));
      for (int j = 0; j < 16; j++) {
        int low = Math.min(15, (int) ((double) row[b * 32 + j] * id + 8.5));
        int high = Math.min(15, (int) ((double) row[b * 32 + 16 + j] * id + 8.5));
        out.set(ValueLayout.JAVA_BYTE, block + 2 + j, (byte) (low | high << 4));
      }
    }
  }

  /** C's roundf: to nearest, halves away from zero. */
  private static int roundHalfAway(float v) {
    return v < 0f ? -Math.round(-v) : Math.round(v);
  }

  /** Float to bfloat16 bits, round to nearest even; NaN stays a (quiet) NaN, overflow becomes infinity. */
  public static short toBf16(float value) {
    int bits = Float.floatToRawIntBits(value);
    if (Float.isNaN(value)) {
      return (short) ((bits >>> 16) | 0x40);
    }
    return (short) ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16);
  }
}
