package dev.owlery.coordinator.scheduler;

import dev.owlery.engine.sampling.SamplingParams;
import java.util.List;

/**
 * A validated generation: everything a sequence needs from its request, checked once at the edge.
 *
 * @param promptTokenIds the prompt ids, {@code -200} where an image's rows go
 * @param numPromptRows decoder positions of the prompt (each placeholder counted as its image rows)
 * @param numImageRows of those, the visual rows
 * @param maxNewTokens tokens to generate at most, >= 1
 * @param stopTokenIds ids that end the generation besides EOS (not included in the output)
 * @param stopStrings texts that end the generation (not included in the output)
 * @param logprobs whether to return each token's log-probability
 * @param numTopLogprobs alternatives to return per token with logprobs, 0..20
 */
public record SequenceRequest(
    int[] promptTokenIds,
    int numPromptRows,
    int numImageRows,
    SamplingParams sampling,
    int maxNewTokens,
    int[] stopTokenIds,
    List<String> stopStrings,
    boolean logprobs,
    int numTopLogprobs) {

  public SequenceRequest {
    promptTokenIds = promptTokenIds.clone();
    stopTokenIds = stopTokenIds.clone();
    stopStrings = List.copyOf(stopStrings);
    if (maxNewTokens < 1) {
      throw new IllegalArgumentException("maxNewTokens must be >= 1. Given: " + maxNewTokens);
    }
  }

  @Override
  public int[] promptTokenIds() {
    return promptTokenIds.clone();
  }

  @Override
  public int[] stopTokenIds() {
    return stopTokenIds.clone();
  }
}
