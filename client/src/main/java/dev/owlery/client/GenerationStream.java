package dev.owlery.client;

import dev.owlery.proto.v1.GenerateResponse;
import io.grpc.Context;
import io.grpc.StatusRuntimeException;
import java.util.Iterator;
import java.util.NoSuchElementException;

/**
 * A Generate stream read in the caller's thread: the delta messages, then the finish message.
 * Messages are requested one at a time, so a slow reader slows the server (flow control). Close
 * it (try-with-resources) when stopping early: that cancels the call on the server. Not
 * thread-safe, except {@link #cancel()}, which may be called from any thread.
 */
public final class GenerationStream implements Iterator<GenerateResponse>, AutoCloseable {

  private final Context.CancellableContext context;
  private final Iterator<GenerateResponse> responses;
  private final CallFailures failures;
  private boolean finished;
  private int numTokens;

  GenerationStream(Context.CancellableContext context, Iterator<GenerateResponse> responses, CallFailures failures) {
    this.context = context;
    this.responses = responses;
    this.failures = failures;
  }

  /**
   * Whether another message follows; blocks until it arrives or the stream ends.
   *
   * @throws OwleryException when the call fails, runs past its deadline or was cancelled
   */
  @Override
  public boolean hasNext() {
    if (finished) {
      return false;
    }
    try {
      if (responses.hasNext()) {
        return true;
      }
    } catch (StatusRuntimeException e) {
      finished = true;
      context.cancel(null);
      throw failures.of(e, numTokens);
    }
    finished = true;
    context.cancel(null);
    return false;
  }

  /**
   * The next message; blocks until it arrives.
   *
   * @throws OwleryException when the call fails, runs past its deadline or was cancelled
   */
  @Override
  public GenerateResponse next() {
    if (!hasNext()) {
      throw new NoSuchElementException("the Generate stream has ended");
    }
    GenerateResponse response = responses.next();
    numTokens += response.getDelta().getTokenIdsCount();
    return response;
  }

  /** Cancels the call; the server is told at once. Reading afterwards throws CANCELLED. */
  public void cancel() {
    context.cancel(null);
  }

  /** Cancels the call unless the stream already ended. */
  @Override
  public void close() {
    cancel();
  }
}
