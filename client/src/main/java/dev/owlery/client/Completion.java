package dev.owlery.client;

import dev.owlery.proto.v1.FinishReason;
import dev.owlery.proto.v1.TokenLogprob;
import dev.owlery.proto.v1.Usage;
import java.util.List;

/**
 * A whole generation, assembled from a Generate stream.
 *
 * @param text the completion text (stop strings and stop tokens excluded)
 * @param tokenIds the generated ids, in order
 * @param logprobs one per token id when the request asked for log-probabilities, else empty
 * @param finishReason why generation ended ({@link FinishReasons#apiName} names it)
 * @param stopString the stop string that matched, for {@code FINISH_REASON_STOP_STRING}; else ""
 * @param usage token counts and timings measured by the coordinator
 */
public record Completion(
    String text,
    List<Integer> tokenIds,
    List<TokenLogprob> logprobs,
    FinishReason finishReason,
    String stopString,
    Usage usage) {

  public Completion {
    tokenIds = List.copyOf(tokenIds);
    logprobs = List.copyOf(logprobs);
  }
}
