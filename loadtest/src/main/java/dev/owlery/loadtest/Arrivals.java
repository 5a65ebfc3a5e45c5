package dev.owlery.loadtest;

import java.util.Random;

/**
 * Seeded arrival times of an open-loop level: the intervals between requests are gamma-distributed
 * with shape {@code burstiness} and mean {@code 1 / rate} (scale {@code 1 / (rate * burstiness)}),
 * the first request at time 0 — vLLM's {@code get_request} in {@code benchmark_serving.py}.
 * Not thread-safe.
 */
final class Arrivals {

  private final Random random;
  private final double shape;
  private final double scaleNanos;
  private double nextNanos;

  Arrivals(Load.Rate rate, long seed) {
    this.random = new Random(seed);
    this.shape = rate.burstiness();
    this.scaleNanos = 1e9 / (rate.perSecond() * rate.burstiness());
  }

  /** The next request's start, in nanoseconds from the level's start; 0 for the first. */
  long next() {
    long at = Math.round(nextNanos);
    nextNanos += scaleNanos * gamma(shape);
    return at;
  }

  /** A Gamma(shape, 1) sample: Marsaglia and Tsang (2000), boosted for shape < 1. */
  private double gamma(double k) {
    if (k < 1) {
      double u = 1 - random.nextDouble();
      return gamma(k + 1) * Math.pow(u, 1 / k);
    }
    double d = k - 1.0 / 3;
    double c = 1 / Math.sqrt(9 * d);
    while (true) {
      double x = random.nextGaussian();
      double v = 1 + c * x;
      if (v <= 0) {
        continue;
      }
      v = v * v * v;
      double u = 1 - random.nextDouble();
      if (Math.log(u) < 0.5 * x * x + d - d * v + d * Math.log(v)) {
        return d * v;
      }
    }
  }
}
