package dev.owlery.client;

import io.grpc.Status;
import java.math.BigDecimal;
import java.net.ConnectException;
import java.net.UnknownHostException;
import java.time.Duration;
import java.util.Locale;

/**
 * Turns the gRPC failures of calls to one target with one deadline into {@link OwleryException}s
 * that say what happened: a connection that could not be made names the target and the reason; a
 * deadline that passed names the deadline and, for Generate, the tokens received before it. The
 * server's own statuses keep their descriptions.
 *
 * @param target the coordinator's address, as the channel names it (several, comma-separated)
 * @param deadline the deadline each call gets
 * @param severalTargets whether calls fail over between coordinators (then a stream that failed
 *     after tokens says why it was not)
 */
record CallFailures(String target, Duration deadline, boolean severalTargets) {

  /** The exception for a failed call that is not a generation. */
  OwleryException of(Throwable error) {
    return of(error, -1);
  }

  /**
   * The exception for a failed generation that had received {@code numTokens} tokens (-1: not a
   * generation).
   */
  OwleryException of(Throwable error, int numTokens) {
    if (error instanceof OwleryException owlery) {
      return owlery;
    }
    Status status = Status.fromThrowable(error);
    if (status.getCode() == Status.Code.UNAVAILABLE) {
      String reason = connectFailure(status.getCause());
      if (reason != null) {
        return new OwleryException(Status.Code.UNAVAILABLE, "cannot connect to %s (%s)".formatted(target, reason), error,
            false);
      }
    }
    if (status.getCode() == Status.Code.DEADLINE_EXCEEDED) {
      String after = numTokens < 0 ? "" : numTokens == 1 ? " after 1 token" : " after %d tokens".formatted(numTokens);
      return new OwleryException(Status.Code.DEADLINE_EXCEEDED,
          "deadline of %s s exceeded%s".formatted(seconds(deadline), after), error, false);
    }
    String description = status.getDescription();
    if (description == null && status.getCause() != null) {
      description = status.getCause().toString();
    }
    if (status.getCode() == Status.Code.UNAVAILABLE && numTokens > 0 && severalTargets) {
      description = "%s (after %d %s streamed; a stream that sent tokens is not retried on another coordinator, which would send them again)"
          .formatted(description, numTokens, numTokens == 1 ? "token was" : "tokens were");
    }
    return new OwleryException(status.getCode(), description, error);
  }

  /** Why no connection could be made ("connection refused", "unknown host"), or null when one was. */
  private static String connectFailure(Throwable cause) {
    for (Throwable t = cause; t != null; t = t.getCause()) {
      if (t instanceof UnknownHostException) {
        return "unknown host";
      }
      if (t instanceof ConnectException connect) {
        // Netty says "Connection refused: /127.0.0.1:1"; the address is already in our sentence.
        String message = connect.getMessage() == null ? "connection failed" : connect.getMessage();
        int colon = message.indexOf(':');
        return (colon < 0 ? message : message.substring(0, colon)).toLowerCase(Locale.ROOT);
      }
    }
    return null;
  }

  /** {@code duration} in seconds without trailing zeros: 0.5, 2, 300. */
  private static String seconds(Duration duration) {
    return BigDecimal.valueOf(duration.toNanos(), 9).stripTrailingZeros().toPlainString();
  }
}
