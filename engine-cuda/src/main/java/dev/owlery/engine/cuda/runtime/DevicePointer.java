package dev.owlery.engine.cuda.runtime;

/**
 * An address in a {@link Device}'s memory: byte {@code byteOffset} of the allocation
 * {@code allocation} (an id the device gave out). Kernels and copies take these; only the device
 * that made one can resolve it.
 */
public record DevicePointer(int allocation, long byteOffset) {

  public DevicePointer {
    if (byteOffset < 0) {
      throw new IllegalArgumentException("a device pointer's offset must be >= 0, got " + byteOffset);
    }
  }

  /** This address moved on by {@code bytes}. */
  public DevicePointer plus(long bytes) {
    return new DevicePointer(allocation, Math.addExact(byteOffset, bytes));
  }

  /** This address moved on by {@code count} 4-byte elements (float32 or int32). */
  public DevicePointer plusWords(long count) {
    return plus(Math.multiplyExact(4L, count));
  }
}
