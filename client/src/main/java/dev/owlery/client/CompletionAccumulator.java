package dev.owlery.client;

import dev.owlery.proto.v1.GenerateDelta;
import dev.owlery.proto.v1.GenerateFinish;
import dev.owlery.proto.v1.GenerateResponse;
import dev.owlery.proto.v1.TokenLogprob;
import io.grpc.Status;
import java.util.ArrayList;
import java.util.List;

/** Collects the messages of one Generate stream into a {@link Completion}; not thread-safe. */
final class CompletionAccumulator {

  private final StringBuilder text = new StringBuilder();
  private final List<Integer> tokenIds = new ArrayList<>();
  private final List<TokenLogprob> logprobs = new ArrayList<>();
  private GenerateFinish finish;

  /** Adds one message; returns its delta, or null for the finish message. */
  GenerateDelta add(GenerateResponse response) {
    return switch (response.getEventCase()) {
      case DELTA -> {
        GenerateDelta delta = response.getDelta();
        text.append(delta.getText());
        tokenIds.addAll(delta.getTokenIdsList());
        logprobs.addAll(delta.getLogprobsList());
        yield delta;
      }
      case FINISH -> {
        finish = response.getFinish();
        yield null;
      }
      case EVENT_NOT_SET -> throw protocolError("the server sent a Generate message with neither delta nor finish");
    };
  }

  /** The tokens received so far. */
  int numTokens() {
    return tokenIds.size();
  }

  /**
   * The completion, once the stream closed with OK.
   *
   * @throws OwleryException INTERNAL when the server closed the stream without a finish message
   */
  Completion complete() {
    if (finish == null) {
      throw protocolError("the server ended the Generate stream without a finish message");
    }
    return new Completion(
        text.toString(), tokenIds, logprobs, finish.getFinishReason(), finish.getStopString(), finish.getUsage());
  }

  private static OwleryException protocolError(String description) {
    return new OwleryException(Status.Code.INTERNAL, description, null);
  }
}
