package dev.owlery.loadtest;

import org.HdrHistogram.Histogram;

/**
 * Median and 99th percentile of one latency, in milliseconds, over {@code count} samples.
 *
 * @param count samples recorded; with none, both percentiles are 0
 */
public record Latency(long count, double p50Ms, double p99Ms) {

  private static final double NANOS_PER_MS = 1e6;

  /** The percentiles of a histogram of nanoseconds. */
  public static Latency of(Histogram nanos) {
    if (nanos.getTotalCount() == 0) {
      return new Latency(0, 0, 0);
    }
    return new Latency(nanos.getTotalCount(), nanos.getValueAtPercentile(50) / NANOS_PER_MS,
        nanos.getValueAtPercentile(99) / NANOS_PER_MS);
  }
}
