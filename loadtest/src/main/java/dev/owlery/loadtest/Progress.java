package dev.owlery.loadtest;

import java.io.PrintWriter;
import java.util.Arrays;
import java.util.Locale;
import java.util.function.LongSupplier;

/**
 * The live progress line of a level on a terminal: requests done (of the total when bounded by a
 * count), the rate they finish at, errors and the median time to first token so far, redrawn in
 * place at most every {@link #REDRAW_NANOS}. Thread-safe: requests report from their own threads.
 */
final class Progress {

  static final long REDRAW_NANOS = 200_000_000;

  private final PrintWriter terminal;
  private final String level;
  private final long total;
  private final LongSupplier nanoClock;
  private final long start;
  private long[] ttfts = new long[64];
  private int done;
  private int numTtfts;
  private int errors;
  private long lastDrawn;

  /**
   * @param total the level's request count, or {@code Long.MAX_VALUE} when only its duration bounds it
   */
  Progress(PrintWriter terminal, String level, long total, LongSupplier nanoClock) {
    this.terminal = terminal;
    this.level = level;
    this.total = total;
    this.nanoClock = nanoClock;
    this.start = nanoClock.getAsLong();
  }

  synchronized void onDone(RequestResult r) {
    done++;
    if (!r.ok()) {
      errors++;
    } else if (r.ttftNanos() >= 0) {
      if (numTtfts == ttfts.length) {
        ttfts = Arrays.copyOf(ttfts, 2 * numTtfts);
      }
      ttfts[numTtfts++] = r.ttftNanos();
    }
    long now = nanoClock.getAsLong();
    if (now - lastDrawn >= REDRAW_NANOS || done == total) {
      lastDrawn = now;
      terminal.print("\r" + line(now));
      terminal.flush();
    }
  }

  /** Clears the line before the level's summary is printed. */
  synchronized void finish() {
    terminal.print("\r\033[K");
    terminal.flush();
  }

  /** E.g. {@code rate 4/s: 37/100 requests, 3.9 req/s, 0 errors, ttft p50 41.2 ms}. */
  synchronized String line(long now) {
    double seconds = (now - start) / 1e9;
    double ttftP50 = numTtfts == 0 ? 0 : Latency.of(Arrays.copyOf(ttfts, numTtfts)).p50Ms();
    return String.format(Locale.ROOT, "%s: %d%s requests, %.1f req/s, %d errors, ttft p50 %.1f ms", level, done,
        total == Long.MAX_VALUE ? "" : "/" + total, seconds > 0 ? done / seconds : 0, errors, ttftP50);
  }
}
