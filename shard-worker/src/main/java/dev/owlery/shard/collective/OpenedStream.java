package dev.owlery.shard.collective;

import dev.owlery.proto.internal.v1.ExchangeContributionsRequest;
import dev.owlery.proto.internal.v1.ExchangeContributionsResponse;
import io.grpc.Status;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;

/** A stream this rank opened to a higher rank: receives the acceptor's handshake, then its contributions. */
final class OpenedStream implements ClientResponseObserver<ExchangeContributionsRequest, ExchangeContributionsResponse> {

  private final int peerRank;
  private final PeerInbound inbound;
  private volatile PeerStream<ExchangeContributionsRequest> outbound;

  OpenedStream(int peerRank, PeerInbound inbound) {
    this.peerRank = peerRank;
    this.inbound = inbound;
  }

  /** The sending half; set once the call has started. */
  PeerStream<ExchangeContributionsRequest> outbound() {
    return outbound;
  }

  @Override
  public void beforeStart(ClientCallStreamObserver<ExchangeContributionsRequest> requests) {
    outbound = new PeerStream<>(
        requests,
        contribution -> ExchangeContributionsRequest.newBuilder().setContribution(contribution).build(),
        status -> requests.cancel(status.getDescription(), status.getCause()));
    requests.setOnReadyHandler(outbound::onReady);
  }

  @Override
  public void onNext(ExchangeContributionsResponse response) {
    switch (response.getKindCase()) {
      case HANDSHAKE -> inbound.onHandshake(peerRank, response.getHandshake());
      case CONTRIBUTION -> inbound.onContribution(peerRank, response.getContribution());
      case KIND_NOT_SET -> inbound.onClosed(peerRank, "sent a message that is neither handshake nor contribution");
    }
  }

  @Override
  public void onError(Throwable error) {
    outbound.markClosed();
    Status status = Status.fromThrowable(error);
    inbound.onClosed(peerRank, "broke: " + status.getCode()
        + (status.getDescription() == null ? "" : " (" + status.getDescription() + ")"));
  }

  @Override
  public void onCompleted() {
    outbound.markClosed();
    inbound.onClosed(peerRank, "was closed by the peer");
  }
}
