package dev.owlery.cluster.registry;

/**
 * Receives registry changes. Called on a Hazelcast event thread, one event at a time per listener
 * in the order of the changes to one node; implementations must not block (hand the event to
 * their owner's queue and return, STYLE.md §6).
 */
public interface NodeRegistryListener {

  /** A node registered. */
  default void nodeAdded(NodeRecord node) {}

  /** A node's record changed (state, placement). */
  default void nodeUpdated(NodeRecord previous, NodeRecord current) {}

  /** A node deregistered or its member left the cluster. */
  default void nodeRemoved(NodeRecord node) {}
}
