package dev.owlery.shard.collective;

/**
 * A peer of the group is gone: its stream broke, or it sent nothing within the all-reduce timeout.
 * The group is broken for good; the coordinator re-forms it (the service answers UNAVAILABLE).
 */
public final class PeerLostException extends IllegalStateException {

  private final int peerRank;

  public PeerLostException(int peerRank, String message) {
    super(message);
    this.peerRank = peerRank;
  }

  /** The rank that was lost, -1 when the group broke for another reason (closed, released). */
  public int peerRank() {
    return peerRank;
  }
}
