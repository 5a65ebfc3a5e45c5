package dev.owlery.engine.model;

import dev.owlery.engine.vision.preprocess.ImageRejectedException;

/**
 * One of a request's pictures could not be decoded: its position in the request's list and why, so
 * that a caller can name the file or field it came from.
 */
public final class ImageInputException extends IllegalArgumentException {

  private final int imageIndex;
  private final String reason;

  public ImageInputException(int imageIndex, IllegalArgumentException cause) {
    super("image %d: %s".formatted(imageIndex, cause.getMessage()), cause);
    this.imageIndex = imageIndex;
    this.reason = cause instanceof ImageRejectedException rejected ? rejected.detail() : cause.getMessage();
  }

  /** The picture's position in the request (0 = first). */
  public int imageIndex() {
    return imageIndex;
  }

  /** What the decoder said, without the index. */
  public String reason() {
    return reason;
  }
}
