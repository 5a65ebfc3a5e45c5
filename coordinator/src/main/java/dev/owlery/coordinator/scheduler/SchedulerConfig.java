package dev.owlery.coordinator.scheduler;

import dev.owlery.coordinator.placement.ServingProfile;
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
 * @param profile what the shards compute on: the step pacer's first estimate of a step's time
 */
public record SchedulerConfig(Duration stepTimeout, Duration releaseTimeout, int maxQueuedPerGroup,
    Duration reformTimeout, ServingProfile profile) {

  /** Shards on CPU cores ({@link ServingProfile#CPU}). */
  public SchedulerConfig(Duration stepTimeout, Duration releaseTimeout, int maxQueuedPerGroup, Duration reformTimeout) {
    this(stepTimeout, releaseTimeout, maxQueuedPerGroup, reformTimeout, ServingProfile.CPU);
  }

  public SchedulerConfig {
    requirePositive("stepTimeout", stepTimeout);
    requirePositive("releaseTimeout", releaseTimeout);
    if (maxQueuedPerGroup < 1) {
      throw new IllegalArgumentException("maxQueuedPerGroup must be >= 1. Given: " + maxQueuedPerGroup);
    }
    requirePositive("reformTimeout", reformTimeout);
    if (profile == null) {
      throw new IllegalArgumentException("profile must be set");
    }
  }

  /**
   * 5 s per step, 2 s to release, 64 requests waiting per group, 30 s for a lost group to be
   * re-formed, shards on CPU cores.
   */
  public static SchedulerConfig defaults() {
    return new SchedulerConfig(Duration.ofSeconds(5), Duration.ofSeconds(2), 64, Duration.ofSeconds(30));
  }

  public SchedulerConfig withMaxQueuedPerGroup(int newMaxQueuedPerGroup) {
    return new SchedulerConfig(stepTimeout, releaseTimeout, newMaxQueuedPerGroup, reformTimeout, profile);
  }

  public SchedulerConfig withReformTimeout(Duration newReformTimeout) {
    return new SchedulerConfig(stepTimeout, releaseTimeout, maxQueuedPerGroup, newReformTimeout, profile);
  }

  public SchedulerConfig withProfile(ServingProfile newProfile) {
    return new SchedulerConfig(stepTimeout, releaseTimeout, maxQueuedPerGroup, reformTimeout, newProfile);
  }

  private static void requirePositive(String name, Duration value) {
    if (value == null || value.isNegative() || value.isZero()) {
      throw new IllegalArgumentException(name + " must be a positive duration. Given: " + value);
    }
  }
}
