package dev.owlery.engine.kernel;

import java.util.concurrent.atomic.LongAdder;

/**
 * Wall time spent in {@link Kernels#attention} since the last {@link #reset()}, summed over every
 * call in the process (both kernel sets), for benchmarks that report attention's share of a
 * forward pass: reset, run the pass, divide {@link #nanos()} by the pass's wall time. Calls that
 * overlap (tensor-parallel ranks in one process each run their own) are each counted in full, so
 * divide by the number of ranks when they run side by side.
 */
public final class AttentionTime {

  private static final LongAdder NANOS = new LongAdder();

  private AttentionTime() {}

  /** Nanoseconds spent in attention calls since the last reset. */
  public static long nanos() {
    return NANOS.sum();
  }

  /** Starts counting from zero. */
  public static void reset() {
    NANOS.reset();
  }

  /** Adds one attention call's wall time (kernel sets outside this package call it too). */
  public static void add(long nanos) {
    NANOS.add(nanos);
  }
}
