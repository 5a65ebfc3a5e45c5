package dev.owlery.engine.nativekernels;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.owlery.engine.kernel.Kernels;
import dev.owlery.engine.kernel.KernelsProvider;
import dev.owlery.engine.kernel.KernelsProvider.KernelSet;
import dev.owlery.engine.kernel.VectorKernels;
import dev.owlery.engine.model.OwlModel;
import dev.owlery.engine.tensor.WeightFormat;
import dev.owlery.engine.testing.Fixtures;
import dev.owlery.engine.testing.TinyOwl2Reference;
import java.io.IOException;
import org.junit.jupiter.api.Test;

/**
 * tiny-owl2 whole (vision tower, abstractor, decoder) with Q8_0 weights on the native kernels: its
 * prompt's matmuls run on AMX with the activations quantized to Q8_0, so the prompt logits of the
 * fixture's image request move from the official float32 run by the weights' rounding and the
 * activations' together.
 */
class NativeOwlModelTest {

  /**
   * Measured 1.10 with the native kernels, 0.92 with the vector kernels' Q8_0 (float32 activations)
   * on logits of magnitude up to 25 (deterministic: each row's sums do not depend on how rows are
   * shared out); {@code ReducedPrecisionWeightsTest} bounds the latter by 1.2, and that bound still
   * holds with the activations rounded too, while a misread block or scale moves logits by tens of
   * units.
   */
  @Test
  void q8_0PromptLogitsStayCloseToTheFloat32Reference() throws IOException {
    float nativeDiff;
    float vectorDiff;
    try (NativeKernels kernels = new NativeKernels(NativeTesting.library(), 2, true, true, false)) {
      nativeDiff = maxPromptLogitDifference(kernels);
    }
    try (VectorKernels kernels = new VectorKernels(2)) {
      vectorDiff = maxPromptLogitDifference(kernels);
    }
    System.out.printf("tiny-owl2 Q8_0 prompt logits from the float32 run: native %.4f, vector %.4f%n", nativeDiff,
        vectorDiff);
    assertThat(nativeDiff).isLessThanOrEqualTo(1.2f).isNotEqualTo(vectorDiff);
  }

  /**
   * The kernels {@code auto} takes for Q8_0 weights: with BF16 prompts where the CPU has AVX512_BF16,
   * whose rounding of attention's inputs (0.093 on float32 weights, below) adds to the weights' and
   * activations' rounding without taking the logits past the same bound. Measured 0.934 against
   * 1.104 with float32 attention (the roundings' errors do not simply add).
   */
  @Test
  void autoKernelsKeepQ8_0PromptLogitsWithinTheSameBound() throws IOException {
    float autoDiff;
    String name;
    try (NativeKernels kernels = (NativeKernels) KernelsProvider.create(KernelSet.AUTO, 2, WeightFormat.Q8_0)) {
      name = kernels.name();
      autoDiff = maxPromptLogitDifference(kernels);
    }
    float float32AttentionDiff;
    try (NativeKernels kernels = new NativeKernels(NativeTesting.library(), 2, true, true, false)) {
      float32AttentionDiff = maxPromptLogitDifference(kernels);
    }
    System.out.printf("tiny-owl2 Q8_0 prompt logits from the float32 run: auto (%s) %.4f, float32 attention %.4f%n",
        name, autoDiff, float32AttentionDiff);
    assertThat(autoDiff).isLessThanOrEqualTo(1.2f);
    if (NativeTesting.library().hasBf16()) {
      assertThat(name).endsWith("-bf16");
      assertThat(autoDiff).isNotEqualTo(float32AttentionDiff);
    } else {
      assertThat(autoDiff).isEqualTo(float32AttentionDiff);
    }
  }

  /**
   * tiny-owl2's float32 weights with attention over the prompt (and in the vision tower and the
   * abstractor: every call of 16 queries or more) multiplying in BF16: the logits may move no more
   * than rounding every weight to BF16 moves them ({@code ReducedPrecisionWeightsTest}'s 0.4), and
   * must move more than the float32 kernels' order of sums does. On a CPU without AVX512_BF16,
   * {@code native-bf16} is refused with the reason.
   */
  @Test
  void bf16AttentionMovesThePromptLogitsLessThanBf16Weights() throws IOException {
    NativeCpuLibrary library = NativeTesting.library();
    if (!library.hasBf16()) {
      assertThatThrownBy(() -> new NativeKernels(library, 2, true, true, true))
          .isInstanceOf(NativeKernelsUnavailableException.class).hasMessageContaining("AVX512_BF16");
      return;
    }
    float bf16Diff;
    float float32Diff;
    try (NativeKernels kernels = new NativeKernels(library, 2, true, true, true)) {
      bf16Diff = maxPromptLogitDifference(kernels, WeightFormat.STORED);
    }
    try (NativeKernels kernels = new NativeKernels(library, 2, true, true, false)) {
      float32Diff = maxPromptLogitDifference(kernels, WeightFormat.STORED);
    }
    System.out.printf("tiny-owl2 float32 weights, prompt logits from the float32 run: BF16 attention %.4f, "
        + "float32 attention %.6f%n", bf16Diff, float32Diff);
    assertThat(bf16Diff).isLessThanOrEqualTo(0.4f).isGreaterThan(float32Diff);
  }

  private static float maxPromptLogitDifference(Kernels kernels) throws IOException {
    return maxPromptLogitDifference(kernels, WeightFormat.Q8_0);
  }

  private static float maxPromptLogitDifference(Kernels kernels, WeightFormat format) throws IOException {
    try (OwlModel model = OwlModel.load(Fixtures.tinyOwl2(), 1, kernels, format)) {
      return TinyOwl2Reference.maxPromptLogitDifference(model);
    }
  }
}
