package dev.owlery.engine.cuda.device;

import java.util.Locale;

/**
 * A CUDA device as the driver reports it.
 *
 * @param index the driver's device number ({@code cuda:N})
 * @param name the product name, e.g. {@code NVIDIA H200}
 * @param computeCapability major and minor, e.g. {@code 9.0} for Hopper
 * @param totalBytes the device's memory ({@code cuDeviceTotalMem})
 * @param freeBytes memory free for this process once it holds a context ({@code cuMemGetInfo}):
 *     other processes' allocations and this context's own are already taken out
 */
public record CudaDevice(int index, String name, String computeCapability, long totalBytes, long freeBytes) {

  public CudaDevice {
    if (totalBytes <= 0 || freeBytes < 0 || freeBytes > totalBytes) {
      throw new IllegalArgumentException(
          "device memory must be 0 <= free <= total, total > 0. Given: free %d, total %d".formatted(freeBytes, totalBytes));
    }
  }

  /**
   * The CPU twin of a CUDA device with {@code totalBytes} of memory, all free (the twin's buffers
   * are heap arrays: its memory is the JVM's heap).
   */
  public static CudaDevice twin(long totalBytes) {
    return new CudaDevice(0, "cpu kernel twins", "twin", totalBytes, totalBytes);
  }

  /** One line for logs and the CLI: {@code cuda:0 NVIDIA H200 (sm 9.0), 140.4 GiB, 139.8 GiB free}. */
  public String describe() {
    return String.format(Locale.ROOT, "cuda:%d %s (sm %s), %.1f GiB, %.1f GiB free",
        index, name, computeCapability, gib(totalBytes), gib(freeBytes));
  }

  static double gib(long bytes) {
    return bytes / (double) (1L << 30);
  }
}
