package dev.owlery.engine.decoder;

import java.util.Locale;

/** Why a generation stopped. */
public enum FinishReason {
  /** A stop token (EOS) was generated; it is the last token of the output. */
  STOP_TOKEN,
  /** {@code max_new_tokens} tokens were generated. */
  MAX_NEW_TOKENS,
  /** The sequence reached its position capacity (max_position_embeddings or the cache size). */
  MAX_POSITIONS;

  /**
   * The name people read ({@code stop_token}, {@code max_new_tokens}, {@code max_positions}): the
   * one {@code owlery generate --output json} prints and the client SDK's {@code FinishReasons} gives.
   */
  public String apiName() {
    return name().toLowerCase(Locale.ROOT);
  }
}
