package dev.owlery.client;

import dev.owlery.proto.v1.GenerateDelta;

/**
 * Receives a streaming generation. Called on gRPC's threads, one call at a time: zero or more
 * {@link #onDelta}, then exactly one of {@link #onFinish} or {@link #onError}. Implementations
 * should return quickly; slow work belongs on the caller's own executor.
 */
public interface GenerationListener {

  /** New tokens and their text. */
  void onDelta(GenerateDelta delta);

  /** The generation ended normally; {@code completion} holds all of it. */
  void onFinish(Completion completion);

  /** The generation failed or was cancelled (code CANCELLED). */
  void onError(OwleryException error);
}
