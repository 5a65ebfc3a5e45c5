package dev.owlery.loadtest;

import java.util.Locale;

/** How requests are started in one level: a fixed number of clients, or a request rate. */
public sealed interface Load {

  /** The level in a few words, e.g. "concurrency 4" or "rate 2.0/s". */
  String describe();

  /** Closed loop: {@code clients} threads, each sending its next request when its last one ended. */
  record Concurrency(int clients) implements Load {
    public Concurrency {
      if (clients < 1) {
        throw new IllegalArgumentException("--concurrency levels must be >= 1, got " + clients);
      }
    }

    @Override
    public String describe() {
      return "concurrency " + clients;
    }
  }

  /**
   * Open loop: requests start at gamma-distributed intervals with mean 1 / {@code perSecond},
   * whether or not earlier ones have ended; {@code burstiness} is the gamma shape (1 = Poisson
   * arrivals; below 1 burstier, above 1 more regular), as in vLLM's benchmark.
   */
  record Rate(double perSecond, double burstiness) implements Load {
    public Rate {
      if (!(perSecond > 0) || Double.isInfinite(perSecond)) {
        throw new IllegalArgumentException("--rate values must be finite and > 0 requests/s, got " + perSecond);
      }
      if (!(burstiness > 0) || Double.isInfinite(burstiness)) {
        throw new IllegalArgumentException("--burstiness must be finite and > 0, got " + burstiness);
      }
    }

    @Override
    public String describe() {
      return String.format(Locale.ROOT, "rate %s/s", LoadReport.number(perSecond));
    }
  }
}
