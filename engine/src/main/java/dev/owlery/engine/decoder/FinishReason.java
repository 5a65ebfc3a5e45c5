package dev.owlery.engine.decoder;

/** Why a generation stopped. */
public enum FinishReason {
  /** A stop token (EOS) was generated; it is the last token of the output. */
  STOP_TOKEN,
  /** {@code max_new_tokens} tokens were generated. */
  MAX_NEW_TOKENS,
  /** The sequence reached its position capacity (max_position_embeddings or the cache size). */
  MAX_POSITIONS
}
