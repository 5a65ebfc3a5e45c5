package dev.owlery.cluster.registry;

import java.io.Serializable;

/**
 * A shard worker's place in a tensor-parallel group, decided by the coordinator.
 *
 * @param groupId the group's id
 * @param rank 0..worldSize-1
 * @param worldSize ranks in the group, >= 1
 */
public record ShardAssignment(String groupId, int rank, int worldSize) implements Serializable {

  public ShardAssignment {
    if (groupId == null || groupId.isBlank()) {
      throw new IllegalArgumentException("groupId must not be blank. Given: '" + groupId + "'");
    }
    if (worldSize < 1) {
      throw new IllegalArgumentException("worldSize must be >= 1. Given: " + worldSize);
    }
    if (rank < 0 || rank >= worldSize) {
      throw new IllegalArgumentException("rank must be in 0.." + (worldSize - 1) + ". Given: " + rank);
    }
  }
}
