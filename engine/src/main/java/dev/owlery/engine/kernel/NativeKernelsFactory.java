package dev.owlery.engine.kernel;

/**
 * Makes {@link KernelsProvider.KernelSet#NATIVE}'s and {@link KernelsProvider.KernelSet#NATIVE_BF16}'s kernels: implemented by {@code engine-native}
 * and found with {@link java.util.ServiceLoader}, so the engine neither depends on that module nor
 * compiles or loads native code unless a process asks for this set.
 */
public interface NativeKernelsFactory {

  /**
   * Native kernels on {@code numThreads} threads, which the caller closes; with {@code bf16Prompts},
   * prompts multiply in BF16 (attention, and BF16 weights' products of many tokens).
   *
   * @throws RuntimeException naming what is missing (a C compiler, an x86-64 CPU with AVX2) when
   *     they cannot be had here
   */
  Kernels create(int numThreads, boolean bf16Prompts);
}
