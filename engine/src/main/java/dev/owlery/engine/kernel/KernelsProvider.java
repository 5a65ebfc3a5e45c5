package dev.owlery.engine.kernel;

/**
 * Chooses the process's kernels once at start-up: the system property {@value #PROPERTY} set to
 * {@code scalar} forces the reference everywhere; {@code vector} (the default) picks
 * {@link VectorKernels} with one thread per available processor.
 */
public final class KernelsProvider {

  /** System property naming the kernel set: {@code vector}, {@code scalar} or {@code native}. */
  public static final String PROPERTY = "owlery.kernels";

  private KernelsProvider() {}

  /** The kernel sets a process can run. */
  public enum KernelSet {
    VECTOR,
    SCALAR,
    /**
     * The vector kernels with decode's F16, Q8_0 and Q4_0 products, and Q8_0 and Q4_0 products of
     * several tokens on AMX (Q8_0) or AVX-512 VNNI, in C compiled on the machine ({@code engine-native}'s {@code NativeKernels}, found
     * through {@link NativeKernelsFactory}).
     */
    NATIVE;

    /** Parses {@code vector}, {@code scalar} or {@code native} (any case), naming the property in the error. */
    public static KernelSet parse(String value) {
      return switch (value.strip().toLowerCase(java.util.Locale.ROOT)) {
        case "vector" -> VECTOR;
        case "scalar" -> SCALAR;
        case "native" -> NATIVE;
        default -> throw new IllegalArgumentException(
            "-D%s must be \"vector\", \"scalar\" or \"native\", got \"%s\"".formatted(PROPERTY, value));
      };
    }
  }

  /** The process-wide kernels, created on first use from {@value #PROPERTY}. */
  public static Kernels shared() {
    return Holder.SHARED;
  }

  /**
   * New kernels of the given set; vector (and native) kernels split matmuls over {@code numThreads}
   * threads. Vector and native kernels hold threads: the caller closes them ({@link AutoCloseable}).
   */
  public static Kernels create(KernelSet set, int numThreads) {
    return switch (set) {
      case VECTOR -> new VectorKernels(numThreads);
      case SCALAR -> new ScalarKernels();
      case NATIVE -> java.util.ServiceLoader.load(NativeKernelsFactory.class).findFirst()
          .orElseThrow(() -> new IllegalStateException(
              "the native kernels need owlery-engine-native on the classpath, which this process lacks"))
          .create(numThreads);
    };
  }

  /** The set named by {@value #PROPERTY}, {@link KernelSet#VECTOR} when it is unset. */
  public static KernelSet configuredSet() {
    return KernelSet.parse(System.getProperty(PROPERTY, "vector"));
  }

  private static final class Holder {
    static final Kernels SHARED = create(configuredSet(), Runtime.getRuntime().availableProcessors());
  }
}
