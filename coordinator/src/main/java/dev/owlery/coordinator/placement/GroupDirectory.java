package dev.owlery.coordinator.placement;

import java.util.List;

/**
 * What the scheduler asks of placement: the READY groups this coordinator drives, and a way to
 * report a group's rank lost. Thread-safe; never blocks.
 */
public interface GroupDirectory {

  /** The groups that are READY now and driven by this coordinator, sorted by group id. */
  List<ServingGroup> servingGroups();

  /** Every group (any state), sorted by group id. */
  List<GroupStatus> groupStatuses();

  /**
   * Whether this coordinator steps {@code groupId} when it is READY (every group has one driver), so
   * that a job may wait for its re-formation here.
   */
  default boolean drives(String groupId) {
    return true;
  }

  /**
   * Reports that {@code lostNodeIds} of {@code group} failed a step (no answer, broken transport):
   * that formation is {@link ServingGroup#lost()} before this returns and goes DOWN, the nodes are
   * passed over for a while, and the group is re-formed
   * when replacements are free. Reports about an older formation are ignored.
   */
  void reportLost(ServingGroup group, List<String> lostNodeIds, String reason);
}
