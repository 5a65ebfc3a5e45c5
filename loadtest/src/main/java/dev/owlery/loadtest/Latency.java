package dev.owlery.loadtest;

import java.util.Arrays;

/**
 * Summary of one latency over {@code count} samples, in milliseconds. Percentiles interpolate
 * linearly between the two nearest ranks ({@code numpy.percentile}'s default, as vLLM's benchmark
 * reports them); with no samples every figure is 0.
 */
public record Latency(long count, double meanMs, double p50Ms, double p90Ms, double p95Ms, double p99Ms,
    double maxMs) {

  private static final double NANOS_PER_MS = 1e6;

  /** The summary of samples in nanoseconds (the array is not changed). */
  public static Latency of(long[] nanos) {
    if (nanos.length == 0) {
      return new Latency(0, 0, 0, 0, 0, 0, 0);
    }
    long[] sorted = nanos.clone();
    Arrays.sort(sorted);
    double sum = 0;
    for (long v : sorted) {
      sum += v;
    }
    return new Latency(sorted.length, sum / sorted.length / NANOS_PER_MS, percentile(sorted, 50),
        percentile(sorted, 90), percentile(sorted, 95), percentile(sorted, 99),
        sorted[sorted.length - 1] / NANOS_PER_MS);
  }

  private static double percentile(long[] sorted, double p) {
    double rank = p / 100 * (sorted.length - 1);
    int below = (int) Math.floor(rank);
    int above = Math.min(below + 1, sorted.length - 1);
    double value = sorted[below] + (rank - below) * (sorted[above] - sorted[below]);
    return value / NANOS_PER_MS;
  }
}
