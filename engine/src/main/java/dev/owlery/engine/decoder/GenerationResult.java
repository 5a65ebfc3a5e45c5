package dev.owlery.engine.decoder;

/** The tokens a generation produced (stop token included when it ended on one) and why it ended. */
public record GenerationResult(int[] tokenIds, FinishReason finishReason) {

  public GenerationResult {
    tokenIds = tokenIds.clone();
  }

  @Override
  public int[] tokenIds() {
    return tokenIds.clone();
  }
}
