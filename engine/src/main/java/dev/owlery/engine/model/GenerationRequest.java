package dev.owlery.engine.model;

import dev.owlery.engine.sampling.SamplingParams;
import dev.owlery.engine.tokenizer.ChatTemplate;
import dev.owlery.engine.vision.preprocess.AspectRatioPolicy;
import java.util.List;

/**
 * One in-process generation: the prompt, its pictures (encoded image files, in placeholder
 * order), how to template and preprocess them, how to pick tokens and when to stop.
 *
 * @param keepLogits keep the logits of every prompt position and of every generated step (for
 *     {@code --dump-logits}); costs {@code vocabSize} floats per row
 */
public record GenerationRequest(
    Prompt prompt,
    List<byte[]> images,
    ChatTemplate template,
    AspectRatioPolicy aspectRatio,
    SamplingParams sampling,
    int maxNewTokens,
    boolean keepLogits) {

  public GenerationRequest {
    images = List.copyOf(images);
    if (maxNewTokens < 1) {
      throw new IllegalArgumentException("max_new_tokens must be >= 1, got " + maxNewTokens);
    }
  }
}
