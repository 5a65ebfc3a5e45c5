package dev.owlery.loadtest;

import io.grpc.Status;

/**
 * One measured Generate request.
 *
 * @param index the request's place in the workload's sequence
 * @param sentNanos when it was sent, from the level's start
 * @param promptTokens prompt tokens the server counted (text and image rows; 0 when it failed before finishing)
 * @param imageTokens of which image rows
 * @param numTokens generated token ids the client received in deltas (also for a failed request)
 * @param ttftNanos from sending the request to the first delta holding tokens; -1 when none came
 * @param itlNanos the gaps between consecutive deltas holding tokens
 * @param e2eNanos from sending the request to the end of the stream (or the failure)
 * @param code OK, or the status the request failed with
 * @param error the failure's description; empty when OK
 */
public record RequestResult(long index, long sentNanos, int promptTokens, int imageTokens, int numTokens,
    long ttftNanos, long[] itlNanos, long e2eNanos, Status.Code code, String error) {

  public boolean ok() {
    return code == Status.Code.OK;
  }

  /**
   * Time per output token after the first, {@code (e2e - ttft) / (tokens - 1)}; 0 with fewer than
   * two tokens (vLLM's TPOT).
   */
  public long tpotNanos() {
    return numTokens > 1 && ttftNanos >= 0 ? (e2eNanos - ttftNanos) / (numTokens - 1) : 0;
  }
}
