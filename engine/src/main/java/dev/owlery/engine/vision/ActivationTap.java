package dev.owlery.engine.vision;

/**
 * A debug hook that sees named intermediate activations (names as in the tiny-owl2 fixture's
 * {@code reference.safetensors}, e.g. {@code vision.layer.0.output}) so a run can be diffed stage by
 * stage against reference dumps.
 *
 * <p>Contract: called on the computing thread with a view of a live buffer; an implementation that
 * keeps the values must copy {@code values[offset, offset + length)} before returning, and must not
 * modify them.
 */
@FunctionalInterface
public interface ActivationTap {

  /** A tap that ignores everything (the production default). */
  ActivationTap NONE = (name, values, offset, length) -> {};

  /** Observes {@code length} floats of the activation {@code name} starting at {@code offset}. */
  void record(String name, float[] values, int offset, int length);
}
