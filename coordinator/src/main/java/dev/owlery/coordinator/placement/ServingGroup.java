package dev.owlery.coordinator.placement;

import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A READY group as the scheduler drives it: its ranks in rank order, the step-id counter shared by
 * every RunStep and RunHealthStep of the group, and a signal completed (with the reason) when this
 * formation of the group goes DOWN. Immutable apart from the counter and the signal; a re-formed
 * group is a new {@code ServingGroup} with a higher {@code formation}.
 *
 * @param formation increases each time the group is (re-)formed
 * @param numKvBlocks the KV blocks every rank of this formation holds (LoadSlice's num_kv_blocks)
 */
public record ServingGroup(String groupId, long formation, List<ShardRank> ranks, int numKvBlocks,
    AtomicLong stepIds, CompletableFuture<String> lost) {

  public ServingGroup {
    ranks = List.copyOf(ranks);
  }

  public int worldSize() {
    return ranks.size();
  }

  /** The next step id of the group (unique and increasing, as shard_worker.proto asks). */
  public long nextStepId() {
    return stepIds.incrementAndGet();
  }
}
