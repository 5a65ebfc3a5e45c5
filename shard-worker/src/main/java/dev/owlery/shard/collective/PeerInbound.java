package dev.owlery.shard.collective;

import dev.owlery.proto.internal.v1.Contribution;
import dev.owlery.proto.internal.v1.PeerHandshake;

/** Where the receiving half of a peer stream delivers what arrives; called on gRPC threads, never blocks. */
interface PeerInbound {

  /** The acceptor's handshake, answering the one this rank sent on a stream it opened. */
  void onHandshake(int peerRank, PeerHandshake handshake);

  void onContribution(int peerRank, Contribution contribution);

  /** The stream ended (error, completion or cancellation); {@code why} says how. */
  void onClosed(int peerRank, String why);
}
