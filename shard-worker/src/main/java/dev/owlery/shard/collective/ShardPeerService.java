package dev.owlery.shard.collective;

import dev.owlery.proto.internal.v1.ExchangeContributionsRequest;
import dev.owlery.proto.internal.v1.ExchangeContributionsResponse;
import dev.owlery.proto.internal.v1.ShardPeerGrpc;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;

/**
 * The ShardPeer service of one shard: accepts the ExchangeContributions streams lower ranks open
 * and routes each, by the group its handshake names, to the {@link GrpcCollective} connected
 * through {@link GrpcCollective#connect(ShardPeerService)}.
 */
public final class ShardPeerService extends ShardPeerGrpc.ShardPeerImplBase implements AutoCloseable {

  private final PeerHub hub = new PeerHub();

  @Override
  public StreamObserver<ExchangeContributionsRequest> exchangeContributions(
      StreamObserver<ExchangeContributionsResponse> responseObserver) {
    return new AcceptedStream((ServerCallStreamObserver<ExchangeContributionsResponse>) responseObserver, hub);
  }

  PeerHub hub() {
    return hub;
  }

  /** Refuses streams from now on, and those still waiting for a slice. */
  @Override
  public void close() {
    hub.close();
  }
}
