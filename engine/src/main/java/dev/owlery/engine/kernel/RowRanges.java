package dev.owlery.engine.kernel;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * The rows of one call split into one contiguous range per thread. A thread claims its own range
 * from the front, a few rows at a time, so the rows it reads form one sequential stream; once its
 * range is done it takes half of what is left of the fullest other range, from the back, so the
 * threads still finish together when one of them runs slower. Each range is one {@code long}
 * ({@code from << 32 | to}) changed by compare-and-set, so owner and thief never claim the same row.
 */
final class RowRanges {

  private final AtomicLongArray ranges;
  private final AtomicInteger nextPart = new AtomicInteger();
  private int parts;
  private int granule;

  RowRanges(int maxParts) {
    ranges = new AtomicLongArray(maxParts);
  }

  /** Splits {@code rows} into {@code parts} ranges of whole granules (the last may be short or empty). */
  void reset(int rows, int parts, int granule) {
    if (parts < 1 || parts > ranges.length()) {
      throw new IllegalArgumentException("parts must be in [1, " + ranges.length() + "], got " + parts);
    }
    this.parts = parts;
    this.granule = granule;
    int perPart = Math.ceilDiv(Math.ceilDiv(rows, parts), granule) * granule;
    for (int p = 0; p < parts; p++) {
      int from = Math.min(rows, p * perPart);
      ranges.set(p, pack(from, Math.min(rows, from + perPart)));
    }
    nextPart.set(0); // volatile write publishes the fields above to the threads that claim
  }

  /** The range a thread owns, once per thread and call; threads beyond the ranges own none. */
  int ownPart() {
    return nextPart.getAndIncrement();
  }

  /**
   * The next rows for the thread owning {@code part}, as {@code from << 32 | to}: up to
   * {@code chunk} rows from the front of its own range, else half of the fullest other range's rows
   * from its back; -1 when no rows are left.
   */
  long claim(int part, int chunk) {
    if (part < parts) {
      for (long range = ranges.get(part); from(range) < to(range); range = ranges.get(part)) {
        int end = Math.min(to(range), from(range) + chunk);
        if (ranges.compareAndSet(part, range, pack(end, to(range)))) {
          return pack(from(range), end);
        }
      }
    }
    while (true) {
      int victim = -1;
      long fullest = 0;
      for (int p = 0; p < parts; p++) {
        long range = ranges.get(p);
        if (to(range) - from(range) > to(fullest) - from(fullest)) {
          victim = p;
          fullest = range;
        }
      }
      if (victim < 0) {
        return -1;
      }
      int left = to(fullest) - from(fullest);
      int take = Math.min(left, Math.ceilDiv(Math.ceilDiv(left, 2), granule) * granule);
      int start = to(fullest) - take;
      if (ranges.compareAndSet(victim, fullest, pack(from(fullest), start))) {
        return pack(start, to(fullest));
      }
    }
  }

  static int from(long range) {
    return (int) (range >>> 32);
  }

  static int to(long range) {
    return (int) range;
  }

  static long pack(int from, int to) {
    return (long) from << 32 | (to & 0xffffffffL);
  }
}
