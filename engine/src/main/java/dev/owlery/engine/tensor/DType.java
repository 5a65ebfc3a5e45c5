package dev.owlery.engine.tensor;

/**
 * Element types of tensors and weight matrices. The first six are checkpoint types with their
 * safetensors names and widths; the block-quantized ones ({@link #Q8_0}, {@link #Q4_0}) exist only in memory, made
 * at load time by {@link WeightFormat}, and store {@link #blockSize()} elements in
 * {@link #blockBytes()} bytes.
 */
public enum DType {
  F32("F32", 1, 4),
  F16("F16", 1, 2),
  BF16("BF16", 1, 2),
  I64("I64", 1, 8),
  I32("I32", 1, 4),
  U8("U8", 1, 1),
  /**
   * llama.cpp's Q8_0: blocks of 32 weights, each block one F16 scale {@code d} then 32 int8
   * {@code q} (34 bytes); a weight is {@code d * q}.
   */
  Q8_0(null, 32, 34),
  /**
   * llama.cpp's Q4_0: blocks of 32 weights, each block one F16 scale {@code d} then 16 bytes whose
   * low nibbles are weights 0-15 and high nibbles weights 16-31 (18 bytes); a weight is
   * {@code d * (q - 8)}.
   */
  Q4_0(null, 32, 18);

  private final String safetensorsName;
  private final int blockSize;
  private final int blockBytes;

  DType(String safetensorsName, int blockSize, int blockBytes) {
    this.safetensorsName = safetensorsName;
    this.blockSize = blockSize;
    this.blockBytes = blockBytes;
  }

  /** The dtype string used in safetensors headers ("F32", "BF16", ...); null for in-memory types. */
  public String safetensorsName() {
    return safetensorsName;
  }

  /**
   * Bytes per element.
   *
   * @throws IllegalStateException for a block-quantized type, whose elements have no whole width
   */
  public int byteSize() {
    if (blockSize != 1) {
      throw new IllegalStateException(this + " stores " + blockSize + " elements in " + blockBytes + " bytes");
    }
    return blockBytes;
  }

  /** Elements per block: 1 for the checkpoint types, 32 for {@link #Q8_0}. */
  public int blockSize() {
    return blockSize;
  }

  /** Bytes per block. */
  public int blockBytes() {
    return blockBytes;
  }

  /** Bytes of {@code elements} elements, a multiple of {@link #blockSize()}. */
  public long bytesOf(long elements) {
    if (elements % blockSize != 0) {
      throw new IllegalArgumentException(elements + " elements are not whole " + this + " blocks of " + blockSize);
    }
    return Math.multiplyExact(elements / blockSize, (long) blockBytes);
  }

  /** True for the floating types a checkpoint tensor may have. */
  public boolean isFloating() {
    return switch (this) {
      case F32, F16, BF16 -> true;
      case I64, I32, U8, Q8_0, Q4_0 -> false;
    };
  }

  /** True for the types a weight matrix may have: the floating types and the quantized ones. */
  public boolean isWeight() {
    return isFloating() || blockSize != 1;
  }

  /** The dtype with this safetensors name, or null when the name is not one we read. */
  public static DType fromSafetensorsName(String name) {
    for (DType d : values()) {
      if (d.safetensorsName != null && d.safetensorsName.equals(name)) {
        return d;
      }
    }
    return null;
  }
}
