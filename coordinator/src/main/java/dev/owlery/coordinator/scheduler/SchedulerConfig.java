package dev.owlery.coordinator.scheduler;

import java.time.Duration;

/**
 * How the scheduler drives shard groups.
 *
 * @param stepTimeout deadline of one RunStep on every rank; a rank that has not answered by then
 *     is lost and its group goes DOWN
 * @param releaseTimeout deadline of ReleaseSequences
 * @param maxQueuedPerGroup requests waiting for a group before RESOURCE_EXHAUSTED, >= 1
 * @param reformTimeout how long the requests of a group that went DOWN wait for it to be re-formed
 *     (or for another group to be READY) before they end with UNAVAILABLE naming the cause
 */
public record SchedulerConfig(Duration stepTimeout, Duration releaseTimeout, int maxQueuedPerGroup,
    Duration reformTimeout) {

  public SchedulerConfig {
    requirePositive("stepTimeout", stepTimeout);
    requirePositive("releaseTimeout", releaseTimeout);
    if (maxQueuedPerGroup < 1) {
      throw new IllegalArgumentException("maxQueuedPerGroup must be >= 1. Given: " + maxQueuedPerGroup);
    }
    requirePositive("reformTimeout", reformTimeout);
  }

  /** 5 s per step, 2 s to release, 64 requests waiting per group, 30 s for a lost group to be re-formed. */
  public static SchedulerConfig defaults() {
    return new SchedulerConfig(Duration.ofSeconds(5), Duration.ofSeconds(2), 64, Duration.ofSeconds(30));
  }

  public SchedulerConfig withMaxQueuedPerGroup(int newMaxQueuedPerGroup) {
    return new SchedulerConfig(stepTimeout, releaseTimeout, newMaxQueuedPerGroup, reformTimeout);
  }

  public SchedulerConfig withReformTimeout(Duration newReformTimeout) {
    return new SchedulerConfig(stepTimeout, releaseTimeout, maxQueuedPerGroup, newReformTimeout);
  }

  private static void requirePositive(String name, Duration value) {
    if (value == null || value.isNegative() || value.isZero()) {
      throw new IllegalArgumentException(name + " must be a positive duration. Given: " + value);
    }
  }
}
