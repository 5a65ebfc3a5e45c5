package dev.owlery.coordinator.scheduler;

import dev.owlery.coordinator.placement.ServingGroup;
import dev.owlery.coordinator.placement.ShardRank;
import dev.owlery.coordinator.placement.UnaryCalls;
import dev.owlery.proto.internal.v1.ReleaseSequencesRequest;
import dev.owlery.proto.internal.v1.ReleaseSequencesResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The sequences a group's shards must still forget (finished, cancelled, failed or preempted since
 * the last step). They ride on the next step ({@code released_sequence_ids}); when the batch is
 * empty they are sent with ReleaseSequences and awaited, so a block freed in the coordinator is free
 * on every shard before a later step hands it out (separate RPCs are not ordered). Used by the
 * group loop's thread only.
 */
final class PendingReleases {

  private static final Logger LOG = Logger.getLogger(PendingReleases.class.getName());

  private final Duration timeout;
  private final List<Long> ids = new ArrayList<>();
  /** True once the ids were sent on their own and failed: they wait for the next step then. */
  private boolean sent;

  PendingReleases(Duration timeout) {
    this.timeout = timeout;
  }

  void add(long sequenceId) {
    ids.add(sequenceId);
    sent = false;
  }

  /** The ids to put on the next step. */
  List<Long> forStep() {
    return List.copyOf(ids);
  }

  /** The step that carried {@link #forStep()} ran on every rank, or the group's shards start empty. */
  void clear() {
    ids.clear();
  }

  /**
   * Sends the ids to every rank of {@code group} and waits (bounded by the timeout); on failure they
   * stay, to ride on the next step.
   */
  void sendAndAwait(ServingGroup group) throws InterruptedException {
    if (ids.isEmpty() || sent) {
      return;
    }
    sent = true;
    try {
      CompletableFuture.allOf(send(group).toArray(CompletableFuture[]::new))
          .get(timeout.toMillis(), TimeUnit.MILLISECONDS);
      ids.clear();
    } catch (ExecutionException | TimeoutException e) {
      LOG.log(Level.FINE, "releasing sequences on group " + group.groupId() + " failed; they ride on the next step",
          e);
    }
  }

  /** Sends the ids to every rank of {@code group} without waiting (the ranks still alive forget them). */
  void sendWithoutWaiting(ServingGroup group) {
    if (!ids.isEmpty()) {
      send(group);
    }
  }

  private List<CompletableFuture<ReleaseSequencesResponse>> send(ServingGroup group) {
    ReleaseSequencesRequest request = ReleaseSequencesRequest.newBuilder().addAllSequenceIds(ids).build();
    List<CompletableFuture<ReleaseSequencesResponse>> calls = new ArrayList<>();
    for (ShardRank rank : group.ranks()) {
      calls.add(UnaryCalls.call(rank.stub().withDeadlineAfter(timeout.toNanos(), TimeUnit.NANOSECONDS)
          ::releaseSequences, request));
    }
    return calls;
  }
}
