package dev.owlery.coordinator.scheduler;

import java.time.Duration;

/**
 * How the scheduler drives shard groups.
 *
 * @param stepTimeout deadline of one RunStep on every rank; a rank that has not answered by then
 *     is lost and the request fails with UNAVAILABLE
 * @param releaseTimeout deadline of ReleaseSequences
 * @param maxQueuedPerGroup requests waiting for a group before RESOURCE_EXHAUSTED, >= 1
 */
public record SchedulerConfig(Duration stepTimeout, Duration releaseTimeout, int maxQueuedPerGroup) {

  public SchedulerConfig {
    requirePositive("stepTimeout", stepTimeout);
    requirePositive("releaseTimeout", releaseTimeout);
    if (maxQueuedPerGroup < 1) {
      throw new IllegalArgumentException("maxQueuedPerGroup must be >= 1. Given: " + maxQueuedPerGroup);
    }
  }

  /** 5 s per step, 2 s to release, 64 requests waiting per group. */
  public static SchedulerConfig defaults() {
    return new SchedulerConfig(Duration.ofSeconds(5), Duration.ofSeconds(2), 64);
  }

  private static void requirePositive(String name, Duration value) {
    if (value == null || value.isNegative() || value.isZero()) {
      throw new IllegalArgumentException(name + " must be a positive duration. Given: " + value);
    }
  }
}
