package dev.owlery.engine.model;

/**
 * The limits every way of generating applies, in process and through the coordinator's API, with
 * the one message each gives: a request that fails here fails the same way on both paths.
 */
public final class GenerationLimits {

  /** Most alternatives reported per generated token (num_top_logprobs, {@code --logprobs}). */
  public static final int MAX_TOP_LOGPROBS = 20;

  private GenerationLimits() {}

  /** Checks the number of alternatives asked for per generated token. */
  public static void checkNumTopLogprobs(int numTopLogprobs) {
    if (numTopLogprobs < 0 || numTopLogprobs > MAX_TOP_LOGPROBS) {
      throw new IllegalArgumentException("num_top_logprobs must be in 0..%d. Given: %d"
          .formatted(MAX_TOP_LOGPROBS, numTopLogprobs));
    }
  }

  /** Checks max_new_tokens against the model's position capacity. */
  public static void checkMaxNewTokens(int maxNewTokens, int maxPositions, String modelName) {
    if (maxNewTokens < 1 || maxNewTokens > maxPositions) {
      throw new IllegalArgumentException("max_new_tokens must be in 1..%d (max_positions of model %s). Given: %d"
          .formatted(maxPositions, modelName, maxNewTokens));
    }
  }

  /** Checks that a prompt of {@code numPromptRows} decoder positions leaves room for one new token. */
  public static void checkPromptFits(int numPromptRows, int numImageRows, int maxPositions, String modelName) {
    if (numPromptRows >= maxPositions) {
      throw new IllegalArgumentException(("the prompt takes %d decoder positions (%d token ids, %d image rows) but "
          + "model %s holds at most %d (max_positions), leaving no room to generate; shorten the prompt")
          .formatted(numPromptRows, numPromptRows - numImageRows, numImageRows, modelName, maxPositions));
    }
  }
}
