package dev.owlery.engine.tensor;

/** Element types a checkpoint tensor can have, with their safetensors names and widths. */
public enum DType {
  F32("F32", 4),
  F16("F16", 2),
  BF16("BF16", 2),
  I64("I64", 8),
  I32("I32", 4),
  U8("U8", 1);

  private final String safetensorsName;
  private final int byteSize;

  DType(String safetensorsName, int byteSize) {
    this.safetensorsName = safetensorsName;
    this.byteSize = byteSize;
  }

  /** The dtype string used in safetensors headers ("F32", "BF16", ...). */
  public String safetensorsName() {
    return safetensorsName;
  }

  public int byteSize() {
    return byteSize;
  }

  /** True for the floating types a weight matrix may have. */
  public boolean isFloating() {
    return switch (this) {
      case F32, F16, BF16 -> true;
      case I64, I32, U8 -> false;
    };
  }

  /** The dtype with this safetensors name, or null when the name is not one we read. */
  public static DType fromSafetensorsName(String name) {
    for (DType d : values()) {
      if (d.safetensorsName.equals(name)) {
        return d;
      }
    }
    return null;
  }
}
