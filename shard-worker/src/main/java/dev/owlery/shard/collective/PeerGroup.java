package dev.owlery.shard.collective;

import java.util.List;

/**
 * One rank's view of its tensor-parallel group.
 *
 * @param groupId the group's id, chosen by the coordinator; tags every peer stream
 * @param rank this rank, 0..worldSize-1
 * @param worldSize ranks in the group, >= 1
 * @param peerAddresses "host:port" of every rank's gRPC server, indexed by rank (this one included)
 */
public record PeerGroup(String groupId, int rank, int worldSize, List<String> peerAddresses) {

  public PeerGroup {
    if (groupId == null || groupId.isBlank()) {
      throw new IllegalArgumentException("group_id must not be blank. Given: '" + groupId + "'");
    }
    if (worldSize < 1) {
      throw new IllegalArgumentException("world_size must be >= 1. Given: " + worldSize);
    }
    if (rank < 0 || rank >= worldSize) {
      throw new IllegalArgumentException("rank must be in 0.." + (worldSize - 1) + ". Given: " + rank);
    }
    peerAddresses = List.copyOf(peerAddresses);
    if (peerAddresses.size() != worldSize) {
      throw new IllegalArgumentException("peer_addresses must hold world_size (" + worldSize
          + ") addresses, one per rank. Given " + peerAddresses.size() + ": " + peerAddresses);
    }
    for (int r = 0; r < worldSize; r++) {
      if (peerAddresses.get(r).isBlank()) {
        throw new IllegalArgumentException("peer_addresses[" + r + "] must not be blank. Given: " + peerAddresses);
      }
    }
  }

  /** The gRPC address of rank {@code r}. */
  public String address(int r) {
    return peerAddresses.get(r);
  }

  /** "rank r at host:port", as error messages name a peer. */
  public String describe(int r) {
    return "rank " + r + " at " + address(r);
  }
}
