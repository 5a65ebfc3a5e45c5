package dev.owlery.engine.onednn;

/** oneDNN cannot be used on this machine: the library or one of its functions is missing. */
public final class OneDnnUnavailableException extends RuntimeException {

  OneDnnUnavailableException(String message, Throwable cause) {
    super(message, cause);
  }
}
