package dev.owlery.client;

import dev.owlery.proto.v1.FinishReason;

/**
 * The names of finish reasons that people read: {@code max_new_tokens}, {@code stop_token},
 * {@code stop_string}, {@code max_positions}, the same names {@code owlery generate --output json}
 * and the in-process engine use.
 */
public final class FinishReasons {

  private FinishReasons() {}

  /** The name of {@code reason}; the model's end-of-sequence token and a requested stop token are both {@code stop_token}. */
  public static String apiName(FinishReason reason) {
    return switch (reason) {
      case FINISH_REASON_MAX_NEW_TOKENS -> "max_new_tokens";
      case FINISH_REASON_EOS_TOKEN, FINISH_REASON_STOP_TOKEN -> "stop_token";
      case FINISH_REASON_STOP_STRING -> "stop_string";
      case FINISH_REASON_MAX_POSITIONS -> "max_positions";
      case FINISH_REASON_UNSPECIFIED, UNRECOGNIZED -> throw new IllegalArgumentException(
          "finish reason %s has no name: the server sent no (or an unknown) reason".formatted(reason));
    };
  }
}
