package dev.owlery.cluster.registry;

import java.io.Serializable;

/**
 * The accelerator a shard worker serves from, as it registers it: the device as the driver
 * reported it at start, the share of its memory the process may use, and the form of its weights,
 * which is what the coordinator needs to size the group's KV pool with the device's memory plan
 * (a shard knows neither the model nor its rank until LoadSlice). A vision worker on a device
 * registers it too, for {@code owlery status}, with utilization 1: its tower's weights and
 * activations are not planned against a share.
 *
 * @param device as {@code --device} names it, e.g. {@code cuda:0} or {@code cuda-twin}
 * @param index the driver's device number
 * @param name the product name, e.g. {@code NVIDIA H200}
 * @param computeCapability e.g. {@code 9.0}
 * @param totalBytes the device's memory
 * @param freeBytes memory free for this process at start
 * @param gpuMemoryUtilization the fraction of {@code totalBytes} this process may use, in (0, 1]
 * @param weights the shard's {@code --weights}, e.g. {@code stored} or {@code f16}
 */
public record NodeDevice(String device, int index, String name, String computeCapability, long totalBytes,
    long freeBytes, double gpuMemoryUtilization, String weights) implements Serializable {

  public NodeDevice {
    if (device == null || device.isBlank() || name == null || computeCapability == null || weights == null) {
      throw new IllegalArgumentException("a device needs its flag value, name, compute capability and weight form. "
          + "Given: %s, %s, %s, %s".formatted(device, name, computeCapability, weights));
    }
    if (totalBytes <= 0 || freeBytes < 0 || freeBytes > totalBytes) {
      throw new IllegalArgumentException("device memory must be 0 <= free <= total, total > 0. Given: free %d, total %d"
          .formatted(freeBytes, totalBytes));
    }
    if (!(gpuMemoryUtilization > 0 && gpuMemoryUtilization <= 1)) {
      throw new IllegalArgumentException("gpuMemoryUtilization must be > 0 and <= 1. Given: " + gpuMemoryUtilization);
    }
  }

  /** Bytes this process may use on the device: {@code floor(gpuMemoryUtilization x totalBytes)}. */
  public long budgetBytes() {
    return (long) Math.floor(gpuMemoryUtilization * totalBytes);
  }
}
