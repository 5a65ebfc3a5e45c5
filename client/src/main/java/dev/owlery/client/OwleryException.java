package dev.owlery.client;

import io.grpc.Status;

/**
 * A failed Owlery call: the gRPC status code says who must act (INVALID_ARGUMENT: fix the
 * request; UNAVAILABLE, RESOURCE_EXHAUSTED: retry later; DEADLINE_EXCEEDED: allow more time or
 * ask for fewer tokens; INTERNAL: an Owlery bug), the description says what happened.
 */
public final class OwleryException extends RuntimeException {

  private final Status.Code code;
  private final String description;

  public OwleryException(Status.Code code, String description, Throwable cause) {
    super(code + (description == null ? "" : ": " + description), cause);
    this.code = code;
    this.description = description;
  }

  /** The exception for a gRPC failure ({@code StatusRuntimeException} or anything else). */
  static OwleryException from(Throwable error) {
    if (error instanceof OwleryException owlery) {
      return owlery;
    }
    Status status = Status.fromThrowable(error);
    String description = status.getDescription();
    if (description == null && status.getCause() != null) {
      description = status.getCause().toString();
    }
    return new OwleryException(status.getCode(), description, error);
  }

  public Status.Code code() {
    return code;
  }

  /** The server's (or gRPC's) description of the failure; null when none was given. */
  public String description() {
    return description;
  }
}
