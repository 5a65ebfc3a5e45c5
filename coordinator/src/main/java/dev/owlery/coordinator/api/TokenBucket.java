package dev.owlery.coordinator.api;

import java.util.function.LongSupplier;

/**
 * A token bucket: holds up to {@code capacity} units, refilled at {@code capacity} per {@code
 * periodNanos}. {@link #take} takes units only when there are enough; {@link #charge} takes them
 * regardless (the level may go negative: a debt that later refills pay off). Thread-safe.
 */
final class TokenBucket {

  private final double capacity;
  private final double unitsPerNano;
  private final LongSupplier nanoTime;
  private double level;
  private long lastNanos;

  /**
   * @param capacity units per period, > 0; the bucket starts full
   * @param nanoTime the clock, {@code System::nanoTime} outside tests
   */
  TokenBucket(double capacity, long periodNanos, LongSupplier nanoTime) {
    if (!(capacity > 0) || periodNanos <= 0) {
      throw new IllegalArgumentException("capacity and period must be > 0. Given: " + capacity + ", " + periodNanos);
    }
    this.capacity = capacity;
    this.unitsPerNano = capacity / periodNanos;
    this.nanoTime = nanoTime;
    this.level = capacity;
    this.lastNanos = nanoTime.getAsLong();
  }

  /**
   * Takes {@code units} if the bucket holds them.
   *
   * @return 0 when taken, else the nanoseconds until the bucket will hold them (nothing taken)
   */
  synchronized long take(double units) {
    long nanos = nanosUntil(units);
    if (nanos == 0) {
      level -= units;
    }
    return nanos;
  }

  /** The nanoseconds until the bucket holds {@code units}; 0 when it does now. Takes nothing. */
  synchronized long nanosUntil(double units) {
    refill();
    return level >= units ? 0 : (long) Math.ceil((units - level) / unitsPerNano);
  }

  /** Takes {@code units} even when the bucket holds fewer. */
  synchronized void charge(double units) {
    refill();
    level -= units;
  }

  private void refill() {
    long now = nanoTime.getAsLong();
    level = Math.min(capacity, level + (now - lastNanos) * unitsPerNano);
    lastNanos = now;
  }
}
