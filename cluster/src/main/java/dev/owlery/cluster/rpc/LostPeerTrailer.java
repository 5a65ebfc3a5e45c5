package dev.owlery.cluster.rpc;

import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;

/**
 * The trailer a shard worker adds to the UNAVAILABLE it answers when a peer of its group is lost
 * ({@code owlery-lost-peer-rank}: that peer's rank). It tells the coordinator that this rank is
 * alive and which one is not: without it, a rank's "lost peer" answer and the lost rank's own
 * broken transport ("Network closed for unknown reason") are both just UNAVAILABLE, and the live
 * rank would be blamed (and passed over) too.
 */
public final class LostPeerTrailer {

  static final Metadata.Key<String> KEY = Metadata.Key.of("owlery-lost-peer-rank", Metadata.ASCII_STRING_MARSHALLER);

  private LostPeerTrailer() {}

  /** UNAVAILABLE with {@code description}, naming {@code peerRank} as the lost rank. */
  public static StatusRuntimeException unavailable(String description, int peerRank, Throwable cause) {
    Metadata trailers = new Metadata();
    trailers.put(KEY, Integer.toString(peerRank));
    return Status.UNAVAILABLE.withDescription(description).withCause(cause).asRuntimeException(trailers);
  }

  /** The lost rank a shard's failure names, or -1 when it names none. */
  public static int lostPeerRank(Throwable failure) {
    Metadata trailers = Status.trailersFromThrowable(failure);
    String rank = trailers == null ? null : trailers.get(KEY);
    return rank == null ? -1 : Integer.parseInt(rank);
  }
}
