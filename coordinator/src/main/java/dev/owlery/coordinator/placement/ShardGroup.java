package dev.owlery.coordinator.placement;

import dev.owlery.cluster.registry.NodeRecord;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;

/**
 * One tensor-parallel group's placement state: its member per rank (null where vacant), state and
 * current formation. Confined to the placement thread; others see {@link GroupStatus} and {@link
 * ServingGroup} snapshots.
 */
final class ShardGroup {

  final String groupId;
  final NodeRecord[] members;
  /** Shared by every formation, so step ids keep increasing across re-forms. */
  final AtomicLong stepIds = new AtomicLong();
  GroupState state = GroupState.FORMING;
  String reason = "";
  long formation;
  /** The READY formation, null in other states. */
  ServingGroup serving;

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

  GroupStatus status() {
    List<String> nodeIds = new ArrayList<>(members.length);
    for (NodeRecord member : members) {
      nodeIds.add(member == null ? "" : member.nodeId());
    }
    return new GroupStatus(groupId, state, members.length, nodeIds, reason);
  }
}
