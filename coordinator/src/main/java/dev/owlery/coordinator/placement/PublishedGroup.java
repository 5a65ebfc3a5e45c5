package dev.owlery.coordinator.placement;

import java.io.Serializable;
import java.util.List;

/**
 * A shard group as the placement leader publishes it to every coordinator (Hazelcast map {@link
 * DrivenGroups#MAP_NAME}): its state and members, and while READY what its driver needs to step it.
 * Exactly one coordinator, the driver, steps a READY group: the ranks of a group run steps in the
 * order they arrive and pair their all-reduces by step id, so two coordinators stepping one group
 * would need a cluster-wide order for every step.
 *
 * @param epoch the placement leader's epoch that wrote it
 * @param formation increases each time the group is (re-)formed, across leaders
 * @param driverNodeId the coordinator that steps the group (the one it was formed for)
 * @param nodeIds node of each rank, "" where vacant
 * @param reason why the group is DOWN, empty otherwise
 * @param ranks while READY, every rank's address and vocabulary slice; empty otherwise
 * @param numKvBlocks while READY, the KV blocks each rank holds
 * @param healthStepId the step id of the formation's health step; the driver's steps follow it
 */
public record PublishedGroup(String groupId, long epoch, long formation, String driverNodeId, GroupState state,
    List<String> nodeIds, String reason, List<Rank> ranks, int numKvBlocks, long healthStepId) implements Serializable {

  /** A READY rank: its node, address and vocabulary slice [vocabStart, vocabEnd). */
  public record Rank(String nodeId, String address, int vocabStart, int vocabEnd) implements Serializable {}

  public PublishedGroup {
    nodeIds = List.copyOf(nodeIds);
    ranks = List.copyOf(ranks);
  }

  public GroupStatus status() {
    return new GroupStatus(groupId, state, nodeIds.size(), nodeIds, reason, driverNodeId);
  }
}
