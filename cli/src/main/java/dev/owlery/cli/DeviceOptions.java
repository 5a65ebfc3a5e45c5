package dev.owlery.cli;

import dev.owlery.engine.cuda.device.CudaDevices;
import dev.owlery.engine.cuda.device.DeviceProbe;
import dev.owlery.engine.cuda.device.DeviceSpec;
import dev.owlery.engine.cuda.plan.DeviceMemoryPlan;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.Option;
import picocli.CommandLine.TypeConversionException;

/**
 * {@code --device} and {@code --gpu-memory-utilization}: where a command computes. The CPU is the
 * default and needs no native code; a CUDA device is probed (loading JCuda only then) and, until
 * the GPU forward exists (issue 11), refused after the probe.
 */
public final class DeviceOptions {

  @Option(names = "--device", paramLabel = "cpu|cuda[:N]", converter = DeviceSpecConverter.class,
      description = "Compute on the CPU (default) or on CUDA device N (cuda is cuda:0).")
  DeviceSpec device;

  @Option(names = "--gpu-memory-utilization", defaultValue = "0.9", paramLabel = "FRACTION",
      description = "With --device cuda: the fraction of the GPU's total memory this process may use for weights, "
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
   * Returns when this process can compute on the device asked for: always for the CPU; a CUDA
   * device is probed first, so that a machine without one is told why in the probe's one line.
   *
   * @throws IllegalArgumentException for a utilization outside (0, 1], a CUDA device that is not
   *     there, and (until the GPU forward exists) any CUDA device
   */
  public void requireUsable() {
    DeviceMemoryPlan.checkUtilization(gpuMemoryUtilization);
    switch (device()) {
      case DeviceSpec.Cpu cpu -> { }
      case DeviceSpec.Cuda cuda -> {
        switch (CudaDevices.probe(cuda.index())) {
          case DeviceProbe.Unavailable(String reason) ->
              throw new IllegalArgumentException("--device %s: %s".formatted(cuda.flagValue(), reason));
          case DeviceProbe.Found(var found) -> throw new IllegalArgumentException(
              "--device %s: found %s, but the GPU forward is not built yet (issue 11); use --device cpu"
                  .formatted(cuda.flagValue(), found.describe()));
        }
      }
    }
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
