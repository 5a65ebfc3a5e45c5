package dev.owlery.coordinator.http;

/**
 * An HTTP request body that is not a request this API takes: its message is one sentence for the
 * caller, naming the field ({@link #param()}) and what was given. Answered 400 in OpenAI's error shape.
 */
public final class OpenAiRequestException extends RuntimeException {

  private final String param;

  /**
   * @param param the JSON path of the offending field (e.g. {@code messages[1].content}), or null for the body
   */
  public OpenAiRequestException(String param, String message) {
    super(message);
    this.param = param;
  }

  /** The offending field's JSON path, or null when the body as a whole is wrong. */
  public String param() {
    return param;
  }
}
