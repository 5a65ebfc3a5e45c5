package dev.owlery.shard.worker;

import dev.owlery.engine.cuda.device.CudaDevice;
import dev.owlery.engine.cuda.device.DeviceSpec;
import dev.owlery.engine.cuda.plan.DeviceMemoryPlan;
import dev.owlery.engine.cuda.runtime.CpuTwinDevice;
import dev.owlery.engine.cuda.runtime.CudaDriverDevice;
import dev.owlery.engine.cuda.runtime.Device;
import dev.owlery.engine.cuda.runtime.NoDeviceException;

/**
 * Where a shard worker runs its slices ({@code --device}), as found at start: the CPU, or a CUDA
 * device (or its CPU twin) with the memory the probe reported and the share of it this process may
 * use ({@code --gpu-memory-utilization}). Each loaded slice opens the device anew and closes it
 * with the slice, which frees every buffer the slice held.
 *
 * @param spec the device as {@code --device} named it
 * @param memory the device's memory as probed at start; null on the CPU
 * @param gpuMemoryUtilization the fraction of {@code memory}'s total this process may use; 0 on the CPU
 */
public record ShardDevice(DeviceSpec spec, CudaDevice memory, double gpuMemoryUtilization) {

  /** The CPU: the engine's kernels, a KV pool on the heap. */
  public static final ShardDevice CPU = new ShardDevice(DeviceSpec.CPU, null, 0);

  public ShardDevice {
    switch (spec) {
      case DeviceSpec.Cpu cpu -> {
        if (memory != null || gpuMemoryUtilization != 0) {
          throw new IllegalArgumentException("the CPU has no device memory or utilization. Given: " + memory);
        }
      }
      case DeviceSpec.Cuda cuda -> requireMemory(spec, memory, gpuMemoryUtilization);
      case DeviceSpec.CudaTwin twin -> requireMemory(spec, memory, gpuMemoryUtilization);
    }
  }

  /** CUDA device {@code probed} (found by {@code CudaDevices.probe}), of which this process may use {@code utilization}. */
  public static ShardDevice cuda(CudaDevice probed, double gpuMemoryUtilization) {
    return new ShardDevice(new DeviceSpec.Cuda(probed.index()), probed, gpuMemoryUtilization);
  }

  /**
   * The CPU twin of a CUDA device with {@code totalBytes} of memory, all free: the CUDA code path
   * run by the kernels' Java twins on the heap (slow; for tests and machines without a GPU).
   */
  public static ShardDevice twin(long totalBytes, double gpuMemoryUtilization) {
    return new ShardDevice(new DeviceSpec.CudaTwin(),
        CudaDevice.twin(totalBytes), gpuMemoryUtilization);
  }

  /** Whether slices run on the CPU's engine kernels rather than a device. */
  public boolean isCpu() {
    return spec instanceof DeviceSpec.Cpu;
  }

  /** Bytes of device memory this process may use: {@code floor(utilization x total)}; 0 on the CPU. */
  public long budgetBytes() {
    return memory == null ? 0 : (long) Math.floor(gpuMemoryUtilization * memory.totalBytes());
  }

  /**
   * A fresh handle on the device for one slice.
   *
   * @throws IllegalStateException on the CPU, or when the CUDA device cannot be opened (the reason)
   */
  Device open() {
    return switch (spec) {
      case DeviceSpec.Cpu cpu -> throw new IllegalStateException("the CPU is not a device to open");
      case DeviceSpec.CudaTwin twin -> new CpuTwinDevice();
      case DeviceSpec.Cuda cuda -> {
        try {
          yield CudaDriverDevice.open(cuda.index());
        } catch (NoDeviceException e) {
          throw new IllegalStateException("cannot open %s: %s".formatted(cuda.flagValue(), e.getMessage()), e);
        }
      }
    };
  }

  private static void requireMemory(DeviceSpec spec, CudaDevice memory, double gpuMemoryUtilization) {
    if (memory == null) {
      throw new IllegalArgumentException(spec.flagValue() + " needs its memory as probed. Given: none");
    }
    DeviceMemoryPlan.checkUtilization(gpuMemoryUtilization);
  }
}
