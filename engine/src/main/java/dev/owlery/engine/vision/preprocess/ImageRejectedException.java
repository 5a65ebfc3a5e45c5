package dev.owlery.engine.vision.preprocess;

/**
 * Image bytes or an image the preprocessor refuses, with a message saying what is wrong and what
 * to send instead. A request carrying such an image is the caller's error, never the server's.
 */
public final class ImageRejectedException extends IllegalArgumentException {

  /** Why the image was refused; a closed set callers may switch over (all are client errors). */
  public enum Reason {
    /** The bytes are empty or do not start like any image format. */
    NOT_AN_IMAGE,
    /** A real image format that we do not decode (TIFF, WebP, ...), or a variant of one (CMYK JPEG). */
    UNSUPPORTED_FORMAT,
    /** A width or height of zero, or one that cannot be read. */
    INVALID_DIMENSIONS,
    /** More pixels than the configured cap (decompression-bomb guard), before or during preprocessing. */
    TOO_LARGE,
    /** The file ends before its pixel data does. */
    TRUNCATED,
    /** The header is readable but the data is damaged. */
    CORRUPT
  }

  private final Reason reason;
  private final String detail;

  public ImageRejectedException(Reason reason, String message) {
    this(reason, message, null);
  }

  public ImageRejectedException(Reason reason, String message, Throwable cause) {
    super("image rejected: " + message, cause);
    this.reason = reason;
    this.detail = message;
  }

  public Reason reason() {
    return reason;
  }

  /** What is wrong with the image, without the "image rejected: " the message starts with. */
  public String detail() {
    return detail;
  }
}
