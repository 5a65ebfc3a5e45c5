package dev.owlery.engine.nativekernels;

/** The native kernels cannot be had on this machine: not x86-64, no C compiler, or the compile failed. */
public final class NativeKernelsUnavailableException extends RuntimeException {

  NativeKernelsUnavailableException(String message, Throwable cause) {
    super(message, cause);
  }
}
