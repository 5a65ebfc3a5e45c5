package dev.owlery.engine.kernel;

import dev.owlery.engine.tensor.WeightFormat;

/**
 * Chooses the process's kernels once at start-up from the system property {@value #PROPERTY}:
 * {@code auto} (the default) picks the native kernels where {@code engine-native} is on the class
 * path and runs here, else {@link VectorKernels}; {@code vector}, {@code native} and
 * {@code native-bf16} pick that set; {@code scalar} forces the reference everywhere. Vector and
 * native kernels run one thread per available processor.
 */
public final class KernelsProvider {

  /** System property naming the kernel set: {@code auto}, {@code vector}, {@code scalar}, {@code native} or {@code native-bf16}. */
  public static final String PROPERTY = "owlery.kernels";

  private KernelsProvider() {}

  /** The kernel sets a process can run. */
  public enum KernelSet {
    /**
     * {@link #NATIVE} where it can run (the process has {@code engine-native}, a C compiler and a CPU
     * with AVX2, FMA and F16C), else {@link #VECTOR}, the reason logged once. Native differs from
     * the vector kernels in the order of F16 and BF16 sums, and in Q8_0 and Q4_0 products, whose
     * activations it rounds to 8 bits as llama.cpp does; F32 weights and attention are the vector
     * kernels' own. For Q8_0 and Q4_0 weights ({@link #create(KernelSet, int, WeightFormat)}),
     * {@link #NATIVE_BF16} where the CPU has AVX512_BF16: those weights, and the activations their
     * products quantize, already hold 8 bits or fewer, and rounding attention's inputs to BF16 moves
     * the logits an order of magnitude less than they do (tiny-owl2: 0.093 against 1.10).
     */
    AUTO,
    VECTOR,
    SCALAR,
    /**
     * The vector kernels with decode's F16, Q8_0 and Q4_0 products, Q8_0 and Q4_0 products of several
     * tokens on AMX (Q8_0) or AVX-512 VNNI, and F16 products of 2 to 32 tokens, in C compiled on the
     * machine ({@code engine-native}'s {@code NativeKernels}, found through {@link NativeKernelsFactory}).
     */
    NATIVE,
    /**
     * {@link #NATIVE} with prompts in BF16 arithmetic on AVX512_BF16: attention over 16 queries or
     * more (prefill, the vision tower), the softmax in float32, and BF16 weights' products of more
     * than 32 tokens, their activations rounded to BF16 as llama.cpp rounds them; decode stays
     * float32. Opt-in: rounding to 8 significant bits changes the results more than the float32
     * kernels' order of sums does.
     */
    NATIVE_BF16;

    /** The name on command lines and in {@value #PROPERTY}: {@code vector}, {@code native-bf16}, ... */
    public String flagValue() {
      return name().toLowerCase(java.util.Locale.ROOT).replace('_', '-');
    }

    /**
     * Parses {@code auto}, {@code vector}, {@code scalar}, {@code native} or {@code native-bf16} (any
     * case), naming the property in the error.
     */
    public static KernelSet parse(String value) {
      return switch (value.strip().toLowerCase(java.util.Locale.ROOT)) {
        case "auto" -> AUTO;
        case "vector" -> VECTOR;
        case "scalar" -> SCALAR;
        case "native" -> NATIVE;
        case "native-bf16" -> NATIVE_BF16;
        default -> throw new IllegalArgumentException(
            "-D%s must be \"auto\", \"vector\", \"scalar\", \"native\" or \"native-bf16\", got \"%s\""
                .formatted(PROPERTY, value));
      };
    }
  }

  /** The process-wide kernels, created on first use from {@value #PROPERTY}. */
  public static Kernels shared() {
    return Holder.SHARED;
  }

  /**
   * The process-wide kernels for weights held as {@code weights}: {@link #shared()}, except Q8_0 and
   * Q4_0 weights under {@code auto}, which get kernels of their own on first use (BF16 prompts).
   */
  public static Kernels shared(WeightFormat weights) {
    return configuredSet() == KernelSet.AUTO && quantized(weights) ? QuantizedHolder.SHARED : Holder.SHARED;
  }

  /** Whether weights held as {@code weights} are Q8_0 or Q4_0, for which {@code auto} asks for BF16 prompts. */
  private static boolean quantized(WeightFormat weights) {
    return weights == WeightFormat.Q8_0 || weights == WeightFormat.Q4_0;
  }

  /**
   * New kernels of the given set; vector (and native) kernels split matmuls over {@code numThreads}
   * threads. Vector and native kernels hold threads: the caller closes them ({@link AutoCloseable}).
   */
  public static Kernels create(KernelSet set, int numThreads) {
    return create(set, numThreads, WeightFormat.STORED);
  }

  /**
   * {@link #create(KernelSet, int)} for a process whose weights are held as {@code weights}: with
   * {@link KernelSet#AUTO}, Q8_0 and Q4_0 weights take BF16 prompts where the CPU runs them.
   */
  public static Kernels create(KernelSet set, int numThreads, WeightFormat weights) {
    return switch (set) {
      case AUTO -> nativeFactory().map(factory -> auto(factory, numThreads, weights))
          .orElseGet(() -> new VectorKernels(numThreads));
      case VECTOR -> new VectorKernels(numThreads);
      case SCALAR -> new ScalarKernels();
      case NATIVE, NATIVE_BF16 -> nativeFactory()
          .orElseThrow(() -> new IllegalStateException(
              "the native kernels need owlery-engine-native on the classpath, which this process lacks"))
          .create(numThreads, set == KernelSet.NATIVE_BF16);
    };
  }

  /**
   * {@code auto} where the process has the native kernels: for Q8_0 and Q4_0 weights with BF16
   * prompts, unless the CPU lacks AVX512_BF16 (then, as for other weights, {@link #nativeOrVector}).
   */
  static Kernels auto(NativeKernelsFactory factory, int numThreads, WeightFormat weights) {
    if (quantized(weights)) {
      try {
        return factory.create(numThreads, true);
      } catch (RuntimeException e) {
        System.getLogger(KernelsProvider.class.getName()).log(System.Logger.Level.INFO,
            "kernels auto: prompts' attention stays float32: " + e.getMessage());
      }
    }
    return nativeOrVector(factory, numThreads);
  }

  /**
   * {@code auto} where the process has the native kernels: them, unless they cannot run here (no C
   * compiler, a CPU without AVX2); then the vector kernels, with the reason logged.
   */
  static Kernels nativeOrVector(NativeKernelsFactory factory, int numThreads) {
    try {
      return factory.create(numThreads, false);
    } catch (RuntimeException e) {
      System.getLogger(KernelsProvider.class.getName()).log(System.Logger.Level.WARNING,
          "kernels auto: the vector kernels, as the native ones cannot run here: " + e.getMessage());
      return new VectorKernels(numThreads);
    }
  }

  private static java.util.Optional<NativeKernelsFactory> nativeFactory() {
    return java.util.ServiceLoader.load(NativeKernelsFactory.class).findFirst();
  }

  /** The set named by {@value #PROPERTY}, {@link KernelSet#AUTO} when it is unset. */
  public static KernelSet configuredSet() {
    return KernelSet.parse(System.getProperty(PROPERTY, "auto"));
  }

  private static final class Holder {
    static final Kernels SHARED = create(configuredSet(), Runtime.getRuntime().availableProcessors());
  }

  private static final class QuantizedHolder {
    static final Kernels SHARED = create(KernelSet.AUTO, Runtime.getRuntime().availableProcessors(), WeightFormat.Q8_0);
  }
}
