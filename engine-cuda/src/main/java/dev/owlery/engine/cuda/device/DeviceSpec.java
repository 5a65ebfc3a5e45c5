package dev.owlery.engine.cuda.device;

import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The device a node computes on, as {@code --device} names it: {@code cpu}, {@code cuda},
 * {@code cuda:N} or {@code cuda-twin}.
 */
public sealed interface DeviceSpec {

  /** The engine's float32 kernels on the host: the default, and all the build and tests need. */
  DeviceSpec CPU = new Cpu();

  /** The flag's spelling of this device: {@code cpu}, {@code cuda:N} or {@code cuda-twin}. */
  String flagValue();

  /** The host processors. */
  record Cpu() implements DeviceSpec {
    @Override
    public String flagValue() {
      return "cpu";
    }
  }

  /**
   * CUDA device {@code index} in the driver's numbering (which {@code CUDA_VISIBLE_DEVICES}
   * renumbers from 0).
   */
  record Cuda(int index) implements DeviceSpec {
    public Cuda {
      if (index < 0) {
        throw new IllegalArgumentException("a CUDA device index must be >= 0. Given: " + index);
      }
    }

    @Override
    public String flagValue() {
      return "cuda:" + index;
    }
  }

  /**
   * The CUDA code path with every kernel launch run by its Java twin on the host
   * ({@code CpuTwinDevice}): what the GPU would compute, slowly, on a machine without one. For
   * tests and for trying the device path; a shard worker on it serves exactly as on a GPU.
   */
  record CudaTwin() implements DeviceSpec {
    @Override
    public String flagValue() {
      return "cuda-twin";
    }
  }

  /**
   * Parses {@code cpu}, {@code cuda} (device 0), {@code cuda:N} or {@code cuda-twin} (any case, surrounding blanks
   * ignored); {@code what} names the flag in the error.
   *
   * @throws IllegalArgumentException for anything else, in one sentence naming the accepted forms
   */
  static DeviceSpec parse(String what, String text) {
    String value = text.strip().toLowerCase(Locale.ROOT);
    if (value.equals("cpu")) {
      return CPU;
    }
    if (value.equals("cuda")) {
      return new Cuda(0);
    }
    if (value.equals("cuda-twin")) {
      return new CudaTwin();
    }
    Matcher cuda = Pattern.compile("cuda:([0-9]{1,4})").matcher(value);
    if (cuda.matches()) {
      return new Cuda(Integer.parseInt(cuda.group(1)));
    }
    throw new IllegalArgumentException(
        ("%s must be cpu, cuda, cuda:N (N a CUDA device index, 0 for the first) or cuda-twin (the CUDA path on the "
            + "CPU, slow, for tests). Given: \"%s\"").formatted(what, text));
  }
}
