package dev.owlery.shard.collective;

import dev.owlery.proto.internal.v1.ExchangeContributionsRequest;
import dev.owlery.proto.internal.v1.ExchangeContributionsResponse;
import dev.owlery.proto.internal.v1.PeerHandshake;
import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;

/**
 * A stream a lower rank opened to this one: its first message is the opener's handshake, after
 * which the {@link PeerHub} hands the stream to the collective of the group it names (at once, or
 * when that slice is loaded); then it carries the opener's contributions.
 */
final class AcceptedStream implements StreamObserver<ExchangeContributionsRequest> {

  private final PeerHub hub;
  private final PeerStream<ExchangeContributionsResponse> outbound;
  private volatile PeerHandshake handshake;
  private volatile PeerInbound target;

  AcceptedStream(ServerCallStreamObserver<ExchangeContributionsResponse> responses, PeerHub hub) {
    this.hub = hub;
    this.outbound = new PeerStream<>(
        responses,
        contribution -> ExchangeContributionsResponse.newBuilder().setContribution(contribution).build(),
        status -> responses.onError(status.asRuntimeException()));
    responses.setOnReadyHandler(outbound::onReady);
    responses.setOnCancelHandler(() -> closed("was cancelled by the peer"));
  }

  /** The opener's handshake; null until its first message. */
  PeerHandshake handshake() {
    return handshake;
  }

  PeerStream<ExchangeContributionsResponse> outbound() {
    return outbound;
  }

  /** Joins the stream to {@code collective}: what arrives goes there; then answers with {@code reply}. */
  void attach(PeerInbound collective, PeerHandshake reply) {
    target = collective; // first: the opener may send as soon as it has the reply
    outbound.sendNow(ExchangeContributionsResponse.newBuilder().setHandshake(reply).build());
  }

  /** Closes the stream with {@code status}, e.g. FAILED_PRECONDITION for a handshake that does not fit. */
  void reject(Status status) {
    outbound.close(status);
  }

  @Override
  public void onNext(ExchangeContributionsRequest request) {
    if (handshake == null) {
      if (!request.hasHandshake()) {
        reject(Status.FAILED_PRECONDITION.withDescription(
            "the first message of ExchangeContributions must be a handshake. Given: " + request.getKindCase()));
        return;
      }
      handshake = request.getHandshake();
      hub.arrived(this);
      return;
    }
    PeerInbound collective = target;
    if (collective == null || !request.hasContribution()) {
      reject(Status.FAILED_PRECONDITION.withDescription(
          "after the handshake only contributions may follow, once this rank answered. Given: " + request.getKindCase()));
      return;
    }
    collective.onContribution(handshake.getRank(), request.getContribution());
  }

  @Override
  public void onError(Throwable error) {
    Status status = Status.fromThrowable(error);
    closed("broke: " + status.getCode() + (status.getDescription() == null ? "" : " (" + status.getDescription() + ")"));
  }

  @Override
  public void onCompleted() {
    closed("was closed by the peer");
  }

  private void closed(String why) {
    outbound.markClosed();
    PeerInbound collective = target;
    if (collective != null) {
      collective.onClosed(handshake.getRank(), why);
    } else {
      hub.forget(this);
    }
  }
}
