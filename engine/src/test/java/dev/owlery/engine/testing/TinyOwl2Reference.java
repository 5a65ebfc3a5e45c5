package dev.owlery.engine.testing;

import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.checkpoint.SafetensorsCheckpoint;
import dev.owlery.engine.model.Completion;
import dev.owlery.engine.model.CompletionListener;
import dev.owlery.engine.model.GenerationRequest;
import dev.owlery.engine.model.InProcessGenerator;
import dev.owlery.engine.model.OwlModel;
import dev.owlery.engine.model.Prompt;
import dev.owlery.engine.sampling.SamplingParams;
import dev.owlery.engine.tokenizer.ChatTemplate;
import dev.owlery.engine.vision.preprocess.AspectRatioPolicy;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/** tiny-owl2 against the official float32 run, for tests of reduced-precision weights and kernels. */
public final class TinyOwl2Reference {

  private TinyOwl2Reference() {}

  /**
   * The largest |logit| difference over the prompt of the fixture's image request, between
   * {@code model} (tiny-owl2, loaded as the test wants) and the official float32 run.
   */
  public static float maxPromptLogitDifference(OwlModel model) throws IOException {
    Path dir = Fixtures.tinyOwl2();
    GenerationRequest request = new GenerationRequest(new Prompt.Text("USER: <|image|>Describe the image. ASSISTANT:"),
        List.of(Files.readAllBytes(dir.resolve("test_image.png"))), ChatTemplate.NONE, AspectRatioPolicy.RESIZE,
        SamplingParams.greedy(), 1, true);
    try (Checkpoint reference = SafetensorsCheckpoint.openFile(dir.resolve("reference.safetensors"))) {
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
