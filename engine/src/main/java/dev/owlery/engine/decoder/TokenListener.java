package dev.owlery.engine.decoder;

/** Receives each generated token as soon as it is chosen, on the generating thread. */
@FunctionalInterface
public interface TokenListener {

  /**
   * Called once per generated token, in order. {@code logits} are the model's raw logits the
   * token was chosen from ({@code [vocabSize]}); the array is reused and valid only during the call.
   */
  void onToken(int tokenId, float[] logits);

  /** A listener that ignores every token. */
  static TokenListener none() {
    return (tokenId, logits) -> { };
  }
}
