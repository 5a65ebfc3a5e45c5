package dev.owlery.coordinator.placement;

import dev.owlery.proto.v1.NodeState;

/** Life cycle of a shard group as the coordinator sees it. */
public enum GroupState {
  /** Ranks assigned; loading slices or answering the health step. */
  FORMING,
  /** Every rank loaded its slice and answered a health step: takes sequences. */
  READY,
  /** A rank was lost (left, stopped answering, failed to load); waits for a replacement. */
  DOWN;

  /** The public API's value for this state. */
  public NodeState toProto() {
    return switch (this) {
      case FORMING -> NodeState.NODE_STATE_STARTING;
      case READY -> NodeState.NODE_STATE_READY;
      case DOWN -> NodeState.NODE_STATE_DOWN;
    };
  }
}
