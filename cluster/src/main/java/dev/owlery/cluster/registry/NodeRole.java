package dev.owlery.cluster.registry;

/** What a node does in the cluster (DESIGN.md §2). */
public enum NodeRole {
  COORDINATOR,
  VISION_WORKER,
  SHARD_WORKER;

  /** The public API's value for this role. */
  public dev.owlery.proto.v1.NodeRole toProto() {
    return switch (this) {
      case COORDINATOR -> dev.owlery.proto.v1.NodeRole.NODE_ROLE_COORDINATOR;
      case VISION_WORKER -> dev.owlery.proto.v1.NodeRole.NODE_ROLE_VISION_WORKER;
      case SHARD_WORKER -> dev.owlery.proto.v1.NodeRole.NODE_ROLE_SHARD_WORKER;
    };
  }
}
