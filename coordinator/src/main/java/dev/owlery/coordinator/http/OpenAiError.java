package dev.owlery.coordinator.http;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.grpc.Status;

/**
 * An error as OpenAI's API answers one: an HTTP status and the body {@code {"error": {"message",
 * "type", "param", "code"}}}. A {@code Generate} status maps to the HTTP status saying who must act:
 * INVALID_ARGUMENT 400, UNAUTHENTICATED 401, NOT_FOUND 404, RESOURCE_EXHAUSTED 429, UNAVAILABLE 503,
 * DEADLINE_EXCEEDED 504, anything else 500.
 *
 * @param param the request field at fault, or null
 */
public record OpenAiError(int httpStatus, String type, String code, String message, String param) {

  /** A body this server could not take (not JSON, wrong shape, unsupported field): 400. */
  public static OpenAiError badRequest(OpenAiRequestException e) {
    return new OpenAiError(400, "invalid_request_error", null, e.getMessage(), e.param());
  }

  /** No such route: 404. */
  public static OpenAiError notFound(String method, String path) {
    return new OpenAiError(404, "invalid_request_error", "unknown_url",
        "no route %s %s; this server serves POST /v1/chat/completions, POST /v1/completions, GET /v1/models and "
            .formatted(method, path) + "GET /health", null);
  }

  /** A route called with the wrong method: 405. */
  public static OpenAiError methodNotAllowed(String method, String path, String allowed) {
    return new OpenAiError(405, "invalid_request_error", null,
        "%s %s is not served; use %s %s".formatted(method, path, allowed, path), null);
  }

  /** A body over the server's limit: 413. */
  public static OpenAiError tooLarge(long maxBytes) {
    return new OpenAiError(413, "invalid_request_error", null,
        "the request body is larger than this server takes (%d bytes)".formatted(maxBytes), null);
  }

  /** The error a {@code Generate} (or other Owlery call) ending in {@code status} is answered with. */
  public static OpenAiError of(Status status) {
    String message = status.getDescription() != null ? status.getDescription() : status.getCode().toString();
    return switch (status.getCode()) {
      case INVALID_ARGUMENT, FAILED_PRECONDITION, OUT_OF_RANGE -> new OpenAiError(400, "invalid_request_error", null,
          message, null);
      case UNAUTHENTICATED -> new OpenAiError(401, "authentication_error", "invalid_api_key", message, null);
      case PERMISSION_DENIED -> new OpenAiError(403, "permission_error", null, message, null);
      case NOT_FOUND -> new OpenAiError(404, "invalid_request_error", "model_not_found", message, "model");
      case RESOURCE_EXHAUSTED -> new OpenAiError(429, "rate_limit_error", "rate_limit_exceeded", message, null);
      case UNAVAILABLE -> new OpenAiError(503, "server_error", "service_unavailable", message, null);
      case DEADLINE_EXCEEDED -> new OpenAiError(504, "server_error", "timeout", message, null);
      case CANCELLED -> new OpenAiError(499, "server_error", "cancelled", message, null);
      case OK, UNKNOWN, ABORTED, UNIMPLEMENTED, INTERNAL, DATA_LOSS, ALREADY_EXISTS -> new OpenAiError(500,
          "server_error", null, message, null);
    };
  }

  /** {@code {"error": {...}}}. */
  public ObjectNode toJson() {
    ObjectNode body = JsonNodeFactory.instance.objectNode();
    ObjectNode error = body.putObject("error");
    error.put("message", message);
    error.put("type", type);
    error.put("param", param);
    error.put("code", code);
    return body;
  }
}
