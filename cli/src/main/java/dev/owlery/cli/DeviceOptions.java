package dev.owlery.cli;

import dev.owlery.engine.cuda.device.CudaDevice;
import dev.owlery.engine.cuda.device.CudaDevices;
import dev.owlery.engine.cuda.device.DeviceProbe;
import dev.owlery.engine.cuda.device.DeviceSpec;
import dev.owlery.engine.cuda.plan.DeviceMemoryPlan;
import dev.owlery.shard.worker.ShardDevice;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.Option;
import picocli.CommandLine.TypeConversionException;

/**
 * {@code --device} and {@code --gpu-memory-utilization}: where a command computes. The CPU is the
 * default and needs no native code; a CUDA device is probed (loading JCuda only then). Shard
 * workers serve from a device ({@link #shardDevice}); in-process generation and the benchmark do
 * not compute on one yet and refuse it after the probe ({@link #requireUsable}).
 */
public final class DeviceOptions {

  @Option(names = "--device", paramLabel = "cpu|cuda[:N]|cuda-twin", converter = DeviceSpecConverter.class,
      description = "Compute on the CPU (default), on CUDA device N (cuda is cuda:0), or on cuda-twin: the CUDA "
          + "code path with each kernel run by its Java twin on the CPU (slow; for tests).")
  DeviceSpec device;

  @Option(names = "--gpu-memory-utilization", defaultValue = "0.9", paramLabel = "FRACTION",
      description = "With --device cuda or cuda-twin: the fraction of the GPU's total memory this process may use for weights, "
          + "workspace and KV cache, as vLLM's flag (several processes on one GPU each take their own; "
          + "default ${DEFAULT-VALUE}).")
  double gpuMemoryUtilization;

  /** The device asked for; the CPU when none was. */
  public DeviceSpec device() {
    return device == null ? DeviceSpec.CPU : device;
  }

  /** Whether {@code --device} was given at all. */
  public boolean given() {
    return device != null;
  }

  /**
   * Returns when this process can compute in process on the device asked for: always for the CPU;
   * a CUDA device is probed first, so that a machine without one is told why in the probe's one line.
   *
   * @throws IllegalArgumentException for a utilization outside (0, 1], a CUDA device that is not
   *     there, and any device: only shard workers compute on one so far
   */
  public void requireUsable() {
    DeviceMemoryPlan.checkUtilization(gpuMemoryUtilization);
    switch (device()) {
      case DeviceSpec.Cpu cpu -> { }
      case DeviceSpec.CudaTwin twin -> throw new IllegalArgumentException(
          "--device cuda-twin serves from shard workers only (owlery shard-worker --device, owlery local --devices); "
              + "use --device cpu");
      case DeviceSpec.Cuda cuda -> {
        CudaDevice found = probe(cuda);
        throw new IllegalArgumentException(("--device %s: found %s, but in-process generation and bench do not "
            + "compute on a GPU yet; shard workers serve from it (owlery shard-worker --device, owlery local "
            + "--devices); use --device cpu").formatted(cuda.flagValue(), found.describe()));
      }
    }
  }

  /**
   * The device a shard worker serves from: the CPU, the probed CUDA device with {@code
   * --gpu-memory-utilization} of its memory, or the CPU twin (whose memory is this JVM's heap: the
   * twin's buffers are heap arrays).
   *
   * @throws IllegalArgumentException for a utilization outside (0, 1] or a CUDA device that is not
   *     there (the probe's one line)
   */
  public ShardDevice shardDevice() {
    DeviceMemoryPlan.checkUtilization(gpuMemoryUtilization);
    return switch (device()) {
      case DeviceSpec.Cpu cpu -> ShardDevice.CPU;
      case DeviceSpec.CudaTwin twin -> ShardDevice.twin(Runtime.getRuntime().maxMemory(), gpuMemoryUtilization);
      case DeviceSpec.Cuda cuda -> ShardDevice.cuda(probe(cuda), gpuMemoryUtilization);
    };
  }

  private static CudaDevice probe(DeviceSpec.Cuda cuda) {
    return switch (CudaDevices.probe(cuda.index())) {
      case DeviceProbe.Unavailable(String reason) ->
          throw new IllegalArgumentException("--device %s: %s".formatted(cuda.flagValue(), reason));
      case DeviceProbe.Found(CudaDevice found) -> found;
    };
  }

  /** Parses {@code --device}; bad text names the accepted forms. */
  public static final class DeviceSpecConverter implements ITypeConverter<DeviceSpec> {
    @Override
    public DeviceSpec convert(String value) {
      try {
        return DeviceSpec.parse("--device", value);
      } catch (IllegalArgumentException e) {
        throw new TypeConversionException(e.getMessage());
      }
    }
  }
}
