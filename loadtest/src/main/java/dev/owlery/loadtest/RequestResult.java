package dev.owlery.loadtest;

import io.grpc.Status;

/**
 * One measured Generate request.
 *
 * @param numTokens generated token ids the client received in deltas (also for a failed request)
 * @param ttftNanos from sending the request to the first delta holding tokens; -1 when none came
 * @param e2eNanos from sending the request to the end of the stream (or the failure)
 * @param code OK, or the status the request failed with
 * @param error the failure's description; empty when OK
 */
public record RequestResult(int numTokens, long ttftNanos, long e2eNanos, Status.Code code, String error) {

  public boolean ok() {
    return code == Status.Code.OK;
  }
}
