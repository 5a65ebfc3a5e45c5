package dev.owlery.coordinator.scheduler;

import java.time.Duration;

/**
 * Sizes a group's steps by time: it keeps a running estimate of the time one row of a step takes
 * (an exponentially weighted mean of the steps seen, seeded from the model's FLOPs per row at the
 * speed the serving profile assumes of a shard: 1 GFLOP/s on CPU, a slow core; 100 TFLOP/s on a GPU),
 * limits the prompt rows of a step so it takes about a quarter of
 * the step timeout (chunked prefill that keeps decoding sequences flowing, and a 1.1B model on two
 * cores from outliving its deadline), and gives each step a deadline of at least four times its
 * expected time. One per group loop, used by its thread only.
 */
final class StepPacer {

  /** Weight of the newest step in the estimate. */
  private static final double NEW_STEP_WEIGHT = 0.3;
  private final Duration stepTimeout;
  private double nanosPerRow;

  /**
   * @param flopsPerRowPerShard the decoder's multiply-adds times 2 per row, over the group's ranks
   * @param priorFlopsPerSecond a shard's speed assumed before any step is seen
   */
  StepPacer(Duration stepTimeout, double flopsPerRowPerShard, double priorFlopsPerSecond) {
    this.stepTimeout = stepTimeout;
    this.nanosPerRow = flopsPerRowPerShard / priorFlopsPerSecond * 1e9;
  }

  /** Rows a step may carry: those expected to take a quarter of the step timeout, 1..{@code maxNumTokens}. */
  int rowBudget(int maxNumTokens) {
    double rows = stepTimeout.toNanos() / 4.0 / nanosPerRow;
    return (int) Math.max(1, Math.min(maxNumTokens, rows));
  }

  /** The step timeout, or four times the expected time of {@code rows} rows when that is longer. */
  Duration deadline(int rows) {
    return Duration.ofNanos(Math.max(stepTimeout.toNanos(), (long) (4 * nanosPerRow * rows)));
  }

  /** A step of {@code rows} rows took {@code nanos}. */
  void observe(int rows, long nanos) {
    nanosPerRow = (1 - NEW_STEP_WEIGHT) * nanosPerRow + NEW_STEP_WEIGHT * ((double) nanos / rows);
  }
}
