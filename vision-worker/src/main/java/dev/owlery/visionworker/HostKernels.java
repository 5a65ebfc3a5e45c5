package dev.owlery.visionworker;

import dev.owlery.engine.kernel.Kernels;
import dev.owlery.engine.kernel.KernelsProvider;
import dev.owlery.engine.kernel.VectorKernels;
import dev.owlery.engine.onednn.OneDnnKernels;
import java.util.Arrays;
import java.util.Locale;
import java.util.stream.Collectors;

/** The kernels a vision worker runs the tower on when it runs on the host ({@code --kernels}). */
public enum HostKernels {
  /**
   * The process's kernels ({@code KernelsProvider.shared()}): the vector kernels, or where
   * {@code -Dowlery.kernels} is {@code auto} (the default) and {@code engine-native} runs, the native
   * kernels, which give the tower's float32 weights and its attention to the vector kernels; float32
   * arithmetic, exact against the scalar reference.
   */
  VECTOR("vector"),
  /** {@link OneDnnKernels}: matmuls of 16 tokens or more in BF16 on the system's oneDNN. */
  ONEDNN_BF16("onednn-bf16");

  private final String flagName;

  HostKernels(String flagName) {
    this.flagName = flagName;
  }

  /** As the flag spells it. */
  public String flagName() {
    return flagName;
  }

  /** Parses a flag value, naming the accepted ones when it is none of them. */
  public static HostKernels parse(String value) {
    for (HostKernels kernels : values()) {
      if (kernels.flagName.equals(value.strip().toLowerCase(Locale.ROOT))) {
        return kernels;
      }
    }
    throw new IllegalArgumentException("kernels must be one of %s, got \"%s\"".formatted(
        Arrays.stream(values()).map(HostKernels::flagName).collect(Collectors.joining(", ")), value));
  }

  /**
   * The kernels to run on: the process's shared kernels, or new oneDNN kernels on one thread per
   * processor (the caller closes those).
   *
   * @throws dev.owlery.engine.onednn.OneDnnUnavailableException when oneDNN is asked for and missing
   */
  Kernels open() {
    return switch (this) {
      case VECTOR -> KernelsProvider.shared();
      case ONEDNN_BF16 -> create(Runtime.getRuntime().availableProcessors());
    };
  }

  /**
   * New kernels of this set on {@code numThreads} threads, which the caller closes (the benchmark's
   * sets, timed side by side).
   *
   * @throws dev.owlery.engine.onednn.OneDnnUnavailableException when oneDNN is asked for and missing
   */
  public Kernels create(int numThreads) {
    return switch (this) {
      case VECTOR -> new VectorKernels(numThreads);
      case ONEDNN_BF16 -> new OneDnnKernels(numThreads);
    };
  }
}
