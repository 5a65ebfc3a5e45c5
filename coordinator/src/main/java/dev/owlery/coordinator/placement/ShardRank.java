package dev.owlery.coordinator.placement;

import dev.owlery.proto.internal.v1.ShardWorkerGrpc;

/**
 * One rank of a READY group: who serves it, where, its vocabulary slice of the logits (as its
 * LoadSlice answered) and a stub on the coordinator's channel to it.
 *
 * @param vocabStart first vocabulary id of the rank's logits
 * @param vocabEnd one past the last
 */
public record ShardRank(String nodeId, String address, int rank, int vocabStart, int vocabEnd,
    ShardWorkerGrpc.ShardWorkerStub stub) {

  /** "shard-1 (10.0.0.7:7071, rank 1 of group group-0)", how failures name the node. */
  public String describe(String groupId) {
    return "%s (%s, rank %d of group %s)".formatted(nodeId, address, rank, groupId);
  }
}
