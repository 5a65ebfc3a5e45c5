package dev.owlery.client;

/** Controls a generation started with a {@link GenerationListener}. */
public interface GenerationHandle {

  /**
   * Cancels the call: the server is told at once and stops generating; the listener receives
   * {@link GenerationListener#onError} with CANCELLED unless the generation already ended.
   */
  void cancel();
}
