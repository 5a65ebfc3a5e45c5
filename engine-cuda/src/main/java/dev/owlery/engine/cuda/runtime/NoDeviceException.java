package dev.owlery.engine.cuda.runtime;

/** There is no CUDA device to run on; the message is the reason, one line a person can act on. */
public final class NoDeviceException extends Exception {

  public NoDeviceException(String reason) {
    super(reason);
  }
}
