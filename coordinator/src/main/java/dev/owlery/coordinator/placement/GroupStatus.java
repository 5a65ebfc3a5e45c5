package dev.owlery.coordinator.placement;

import dev.owlery.proto.v1.ShardGroupStatus;
import java.util.List;

/**
 * A shard group as GetClusterStatus reports it.
 *
 * @param nodeIds node of each rank, "" where the rank is vacant
 * @param reason why the group is DOWN (empty otherwise)
 */
public record GroupStatus(String groupId, GroupState state, int worldSize, List<String> nodeIds, String reason) {

  public GroupStatus {
    nodeIds = List.copyOf(nodeIds);
  }

  public ShardGroupStatus toProto(String model, int numRunningSequences, int numKvBlocks, int numFreeKvBlocks) {
    return ShardGroupStatus.newBuilder()
        .setGroupId(groupId)
        .setModel(model)
        .setWorldSize(worldSize)
        .addAllNodeIds(nodeIds)
        .setState(state.toProto())
        .setNumRunningSequences(numRunningSequences)
        .setNumKvBlocks(numKvBlocks)
        .setNumFreeKvBlocks(numFreeKvBlocks)
        .build();
  }
}
