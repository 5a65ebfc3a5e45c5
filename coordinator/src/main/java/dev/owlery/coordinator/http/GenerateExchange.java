package dev.owlery.coordinator.http;

import dev.owlery.proto.v1.GenerateDelta;
import dev.owlery.proto.v1.GenerateFinish;
import dev.owlery.proto.v1.GenerateRequest;
import dev.owlery.proto.v1.GenerateResponse;
import io.grpc.Status;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.GenericFutureListener;
import java.util.ArrayList;
import java.util.List;

/**
 * One generating HTTP request's {@code Generate} call, written back to its connection: whole (one JSON
 * body once finished) or streamed as server-sent events, one chunk per delta and {@code data: [DONE]}
 * at the end. The response head waits for the call's first message, so a request refused by the
 * coordinator (bad field, key, limit) gets its own HTTP status. A streamed call takes its next message
 * only once the last one was written to the socket, so a slow reader slows its call instead of
 * filling memory; a connection that closes cancels the call, which frees its sequence at the next step.
 * gRPC calls these methods one at a time.
 */
final class GenerateExchange implements ClientResponseObserver<GenerateRequest, GenerateResponse> {

  private final Channel channel;
  private final OpenAiRequest request;
  private final OpenAiResponses responses;
  private final boolean keepAlive;
  private final List<GenerateDelta> deltas = new ArrayList<>();
  private ClientCallStreamObserver<GenerateRequest> call;
  /** Cancels the call when the connection closes; removed once the call ended (a kept-alive connection goes on). */
  private GenericFutureListener<Future<? super Void>> cancelOnClose;
  private boolean started;

  GenerateExchange(Channel channel, OpenAiRequest request, OpenAiResponses responses, boolean keepAlive) {
    this.channel = channel;
    this.request = request;
    this.responses = responses;
    this.keepAlive = keepAlive;
  }

  @Override
  public void beforeStart(ClientCallStreamObserver<GenerateRequest> call) {
    this.call = call;
    if (request.stream()) {
      call.disableAutoRequestWithInitial(1);
    }
    cancelOnClose = closed -> call.cancel("the HTTP client closed the connection", null);
    channel.closeFuture().addListener(cancelOnClose);
  }

  @Override
  public void onNext(GenerateResponse response) {
    switch (response.getEventCase()) {
      case DELTA -> onDelta(response.getDelta());
      case FINISH -> onFinish(response.getFinish());
      case EVENT_NOT_SET -> throw new IllegalStateException("a Generate response carries a delta or a finish");
    }
  }

  private void onDelta(GenerateDelta delta) {
    if (!request.stream()) {
      deltas.add(delta);
      return;
    }
    start();
    HttpResponses.sendEvent(channel, responses.deltaChunk(delta)).addListener(written -> {
      if (written.isSuccess()) {
        call.request(1);
      }
    });
  }

  private void onFinish(GenerateFinish finish) {
    if (!request.stream()) {
      HttpResponses.sendJson(channel, 200, responses.completion(deltas, finish), keepAlive);
      return;
    }
    start();
    HttpResponses.sendEvent(channel, responses.finishChunk(finish));
    if (request.includeUsage()) {
      HttpResponses.sendEvent(channel, responses.usageChunk(finish));
    }
    HttpResponses.endEvents(channel, keepAlive).addListener(written -> call.request(1));
  }

  /** Sends the stream's head (and a chat stream's first chunk, the assistant's role) before its first chunk. */
  private void start() {
    if (started) {
      return;
    }
    started = true;
    HttpResponses.startEvents(channel, keepAlive);
    if (request.kind() == OpenAiRequest.Kind.CHAT) {
      HttpResponses.sendEvent(channel, responses.roleChunk());
    }
  }

  @Override
  public void onError(Throwable error) {
    channel.closeFuture().removeListener(cancelOnClose);
    if (!channel.isActive()) {
      return; // the client left; the call was cancelled for it
    }
    OpenAiError answer = OpenAiError.of(Status.fromThrowable(error));
    if (started) {
      HttpResponses.failEvents(channel, answer);
    } else {
      HttpResponses.sendError(channel, answer, keepAlive).addListener(ChannelFutureListener.CLOSE_ON_FAILURE);
    }
  }

  @Override
  public void onCompleted() {
    channel.closeFuture().removeListener(cancelOnClose);
  }
}
