package dev.owlery.cluster.registry;

import dev.owlery.proto.v1.NodeStatus;
import java.io.Serializable;
import java.util.UUID;

/**
 * One node as the registry holds it. Stored with Java serialization (records serialize through
 * their canonical constructor, so the checks below also run on every read).
 *
 * @param nodeId unique in the cluster, chosen by the node at start
 * @param memberUuid the Hazelcast member the node runs in; its entry goes when that member leaves
 * @param role what the node does
 * @param grpcAddress "host:port" of the node's gRPC server
 * @param metricsUrl the node's Prometheus endpoint
 * @param resources what the node may use
 * @param state its life-cycle state
 * @param assignment its group and rank; null until the coordinator places it (shard workers only)
 */
public record NodeRecord(
    String nodeId,
    UUID memberUuid,
    NodeRole role,
    String grpcAddress,
    String metricsUrl,
    NodeResources resources,
    NodeState state,
    ShardAssignment assignment)
    implements Serializable {

  public NodeRecord {
    if (nodeId == null || nodeId.isBlank()) {
      throw new IllegalArgumentException("nodeId must not be blank. Given: '" + nodeId + "'");
    }
    if (memberUuid == null || role == null || resources == null || state == null) {
      throw new IllegalArgumentException(
          "node " + nodeId + ": memberUuid, role, resources and state must be set. Given: " + memberUuid + ", "
              + role + ", " + resources + ", " + state);
    }
    if (grpcAddress == null || grpcAddress.isBlank()) {
      throw new IllegalArgumentException("node " + nodeId + ": grpcAddress must not be blank");
    }
    if (metricsUrl == null) {
      throw new IllegalArgumentException("node " + nodeId + ": metricsUrl must not be null (empty when none)");
    }
    if (assignment != null && role != NodeRole.SHARD_WORKER) {
      throw new IllegalArgumentException(
          "node " + nodeId + ": only shard workers are assigned to groups. Given role " + role + " with " + assignment);
    }
  }

  /** A node that has just started: STARTING, not placed. */
  public static NodeRecord starting(
      String nodeId, UUID memberUuid, NodeRole role, String grpcAddress, String metricsUrl, NodeResources resources) {
    return new NodeRecord(nodeId, memberUuid, role, grpcAddress, metricsUrl, resources, NodeState.STARTING, null);
  }

  public NodeRecord withState(NodeState newState) {
    return new NodeRecord(nodeId, memberUuid, role, grpcAddress, metricsUrl, resources, newState, assignment);
  }

  /** This record held by the member {@code newMemberUuid} (the node's member after a merge). */
  public NodeRecord withMemberUuid(UUID newMemberUuid) {
    return new NodeRecord(nodeId, newMemberUuid, role, grpcAddress, metricsUrl, resources, state, assignment);
  }

  /** This record placed at {@code newAssignment}; null removes the placement. */
  public NodeRecord withAssignment(ShardAssignment newAssignment) {
    return new NodeRecord(nodeId, memberUuid, role, grpcAddress, metricsUrl, resources, state, newAssignment);
  }

  /** The public API's view of this node (rank -1 and empty group when not placed). */
  public NodeStatus toProto() {
    NodeStatus.Builder status =
        NodeStatus.newBuilder()
            .setNodeId(nodeId)
            .setRole(role.toProto())
            .setState(state.toProto())
            .setGrpcAddress(grpcAddress)
            .setMetricsUrl(metricsUrl)
            .setNumCores(resources.numCores())
            .setMemoryBytes(resources.memoryBytes())
            .setRank(-1);
    if (assignment != null) {
      status.setGroupId(assignment.groupId()).setRank(assignment.rank());
    }
    NodeDevice device = resources.device();
    if (device != null) {
      status.setDevice(dev.owlery.proto.v1.NodeDevice.newBuilder().setDevice(device.device()).setName(device.name())
          .setTotalBytes(device.totalBytes()).setBudgetBytes(device.budgetBytes()));
    }
    return status.build();
  }
}
