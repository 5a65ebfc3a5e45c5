package dev.owlery.engine.nativekernels;

import static org.assertj.core.api.Assertions.assertThat;

import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.checkpoint.SafetensorsCheckpoint;
import dev.owlery.engine.kernel.Kernels;
import dev.owlery.engine.kernel.VectorKernels;
import dev.owlery.engine.model.Completion;
import dev.owlery.engine.model.CompletionListener;
import dev.owlery.engine.model.GenerationRequest;
import dev.owlery.engine.model.InProcessGenerator;
import dev.owlery.engine.model.OwlModel;
import dev.owlery.engine.model.Prompt;
import dev.owlery.engine.sampling.SamplingParams;
import dev.owlery.engine.tensor.WeightFormat;
import dev.owlery.engine.testing.Fixtures;
import dev.owlery.engine.tokenizer.ChatTemplate;
import dev.owlery.engine.vision.preprocess.AspectRatioPolicy;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
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
    try (NativeKernels kernels = new NativeKernels(NativeTesting.library(), 2, true)) {
      nativeDiff = maxPromptLogitDifference(kernels);
    }
    try (VectorKernels kernels = new VectorKernels(2)) {
      vectorDiff = maxPromptLogitDifference(kernels);
    }
    System.out.printf("tiny-owl2 Q8_0 prompt logits from the float32 run: native %.4f, vector %.4f%n", nativeDiff,
        vectorDiff);
    assertThat(nativeDiff).isLessThanOrEqualTo(1.2f).isNotEqualTo(vectorDiff);
  }

  private static float maxPromptLogitDifference(Kernels kernels) throws IOException {
    Path dir = Fixtures.tinyOwl2();
    GenerationRequest request = new GenerationRequest(new Prompt.Text("USER: <|image|>Describe the image. ASSISTANT:"),
        List.of(Files.readAllBytes(dir.resolve("test_image.png"))), ChatTemplate.NONE, AspectRatioPolicy.RESIZE,
        SamplingParams.greedy(), 1, true);
    try (OwlModel model = OwlModel.load(dir, 1, kernels, WeightFormat.Q8_0);
        Checkpoint reference = SafetensorsCheckpoint.openFile(dir.resolve("reference.safetensors"))) {
      Completion completion = new InProcessGenerator(model).generate(request, CompletionListener.NONE);
      float[] expected = reference.tensor("logits").toFloatArray();
      float maxDiff = 0;
      for (int i = 0; i < expected.length; i++) {
        maxDiff = Math.max(maxDiff, Math.abs(completion.promptLogits()[i] - expected[i]));
      }
      return maxDiff;
    }
  }
}
