package dev.owlery.client;

import io.grpc.Status;

/**
 * A failed Owlery call: the gRPC status code says who must act (INVALID_ARGUMENT: fix the
 * request; UNAVAILABLE, RESOURCE_EXHAUSTED: retry later; DEADLINE_EXCEEDED: allow more time or
 * ask for fewer tokens; INTERNAL: an Owlery bug), the description says what happened in words a
 * person can act on ("cannot connect to HOST:PORT (connection refused)", "deadline of 0.5 s
 * exceeded after 3 tokens") rather than gRPC's transport details.
 */
public final class OwleryException extends RuntimeException {

  private final Status.Code code;
  private final String description;
  private final boolean reachedServer;

  public OwleryException(Status.Code code, String description, Throwable cause) {
    this(code, description, cause, true);
  }

  OwleryException(Status.Code code, String description, Throwable cause, boolean reachedServer) {
    super(code + (description == null ? "" : ": " + description), cause);
    this.code = code;
    this.description = description;
    this.reachedServer = reachedServer;
  }

  public Status.Code code() {
    return code;
  }

  /** The server's description of the failure, or the client's own; null when none was given. */
  public String description() {
    return description;
  }

  /**
   * False when the call ended on this side: the client could not connect, or the call's deadline
   * passed; true when the server answered with this status.
   */
  public boolean reachedServer() {
    return reachedServer;
  }
}
