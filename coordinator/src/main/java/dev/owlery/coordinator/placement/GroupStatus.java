package dev.owlery.coordinator.placement;

import dev.owlery.proto.v1.ShardGroupStatus;
import java.util.List;

/**
 * A shard group as GetClusterStatus reports it.
 *
 * @param nodeIds node of each rank, "" where the rank is vacant
 * @param reason why the group is DOWN (empty otherwise)
 * @param driverNodeId the coordinator that steps the group
 */
public record GroupStatus(String groupId, GroupState state, int worldSize, List<String> nodeIds, String reason,
    String driverNodeId) {

  public GroupStatus {
    nodeIds = List.copyOf(nodeIds);
  }

  /** The group's placement as GetClusterStatus reports it; the scheduler adds its load. */
  public ShardGroupStatus.Builder toProto(String model) {
    return ShardGroupStatus.newBuilder()
        .setGroupId(groupId)
        .setModel(model)
        .setWorldSize(worldSize)
        .addAllNodeIds(nodeIds)
        .setState(state.toProto())
        .setCoordinatorNodeId(driverNodeId);
  }
}
