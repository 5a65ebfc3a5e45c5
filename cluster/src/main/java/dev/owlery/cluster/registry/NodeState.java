package dev.owlery.cluster.registry;

/** Life-cycle state a node publishes; only READY nodes are given work. */
public enum NodeState {
  /** Up, loading weights or waiting for a placement. */
  STARTING,
  /** Accepts work. */
  READY,
  /** Finishing in-flight work before shutting down; receives no new work. */
  DRAINING;

  /** The public API's value for this state. */
  public dev.owlery.proto.v1.NodeState toProto() {
    return switch (this) {
      case STARTING -> dev.owlery.proto.v1.NodeState.NODE_STATE_STARTING;
      case READY -> dev.owlery.proto.v1.NodeState.NODE_STATE_READY;
      case DRAINING -> dev.owlery.proto.v1.NodeState.NODE_STATE_DRAINING;
    };
  }
}
