package dev.owlery.coordinator.placement;

import dev.owlery.cluster.registry.NodeRecord;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;

/**
 * One tensor-parallel group's placement state: its member per rank (null where vacant), state and
 * current formation and its driver. Confined to the placement thread; coordinators see it as a
 * {@link PublishedGroup}.
 */
final class ShardGroup {

  final String groupId;
  final NodeRecord[] members;
  /** Shared by every formation, so step ids keep increasing across re-forms. */
  final AtomicLong stepIds = new AtomicLong();
  GroupState state = GroupState.FORMING;
  String reason = "";
  long formation;
  /** The coordinator that steps the current formation; empty before the first. */
  String driver = "";
  /** While READY: every rank's address and vocabulary slice, the KV blocks per rank and the health step's id. */
  List<PublishedGroup.Rank> ranks = List.of();
  int numKvBlocks;
  long healthStepId;

  ShardGroup(String groupId, int worldSize) {
    this.groupId = groupId;
    this.members = new NodeRecord[worldSize];
  }

  int worldSize() {
    return members.length;
  }

  /** The rank {@code nodeId} holds, or -1. */
  int rankOf(String nodeId) {
    for (int r = 0; r < members.length; r++) {
      if (members[r] != null && members[r].nodeId().equals(nodeId)) {
        return r;
      }
    }
    return -1;
  }

  int numVacancies() {
    return (int) Arrays.stream(members).filter(member -> member == null).count();
  }

  /** Fills the vacant ranks, lowest first, from {@code free} (taken from its front). */
  void fillVacancies(List<NodeRecord> free) {
    for (int r = 0; r < members.length; r++) {
      if (members[r] == null) {
        members[r] = free.removeFirst();
      }
    }
  }

  /** This group as the leader {@code epoch} publishes it. */
  PublishedGroup published(long epoch) {
    List<String> nodeIds = new ArrayList<>(members.length);
    for (NodeRecord member : members) {
      nodeIds.add(member == null ? "" : member.nodeId());
    }
    boolean ready = state == GroupState.READY;
    return new PublishedGroup(groupId, epoch, formation, driver, state, nodeIds, reason, ready ? ranks : List.of(),
        ready ? numKvBlocks : 0, ready ? healthStepId : 0);
  }
}
