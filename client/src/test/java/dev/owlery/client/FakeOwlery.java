package dev.owlery.client;

import dev.owlery.proto.v1.FinishReason;
import dev.owlery.proto.v1.GenerateDelta;
import dev.owlery.proto.v1.GenerateFinish;
import dev.owlery.proto.v1.GenerateRequest;
import dev.owlery.proto.v1.GenerateResponse;
import dev.owlery.proto.v1.ListModelsRequest;
import dev.owlery.proto.v1.ListModelsResponse;
import dev.owlery.proto.v1.Model;
import dev.owlery.proto.v1.OwleryGrpc;
import dev.owlery.proto.v1.TokenLogprob;
import dev.owlery.proto.v1.Usage;
import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

/**
 * A coordinator stand-in whose Generate behaviour is picked by the prompt text: "hello" streams
 * "Hello world" in three deltas and finishes; "hang" sends one delta and never finishes; "silent"
 * sends nothing; "invalid" fails with INVALID_ARGUMENT; "truncated" ends without a finish;
 * "lost" fails with UNAVAILABLE after one delta. A draining fake fails every Generate with
 * UNAVAILABLE at once. Every Generate is counted.
 */
final class FakeOwlery extends OwleryGrpc.OwleryImplBase {

  static final Usage USAGE =
      Usage.newBuilder()
          .setNumPromptTokens(80)
          .setNumImageTokens(65)
          .setNumCompletionTokens(4)
          .setTimeToFirstTokenNs(1_500_000)
          .setTotalDurationNs(4_000_000)
          .build();

  final AtomicReference<GenerateRequest> lastRequest = new AtomicReference<>();
  final AtomicInteger generateCalls = new AtomicInteger();
  volatile boolean draining;
  /** Counted down when a held ("hang", "silent") call starts and when the server sees it cancelled. */
  final CountDownLatch held = new CountDownLatch(1);
  final CountDownLatch cancelled = new CountDownLatch(1);

  static GenerateResponse delta(String text, int tokenId, float logprob) {
    return GenerateResponse.newBuilder()
        .setDelta(
            GenerateDelta.newBuilder()
                .setText(text)
                .addTokenIds(tokenId)
                .addLogprobs(TokenLogprob.newBuilder().setTokenId(tokenId).setToken(text).setLogprob(logprob)))
        .build();
  }

  @Override
  public void generate(GenerateRequest request, StreamObserver<GenerateResponse> response) {
    lastRequest.set(request);
    generateCalls.incrementAndGet();
    ServerCallStreamObserver<GenerateResponse> call = (ServerCallStreamObserver<GenerateResponse>) response;
    call.setOnCancelHandler(cancelled::countDown);
    if (draining) {
      response.onError(Status.UNAVAILABLE.withDescription("this coordinator is draining").asRuntimeException());
      return;
    }
    switch (request.getPromptText()) {
      case "hello" -> {
        response.onNext(delta("Hel", 15043, -0.25f));
        response.onNext(delta("lo", 29877, -0.5f));
        response.onNext(delta(" world", 3186, -1.0f));
        response.onNext(
            GenerateResponse.newBuilder()
                .setFinish(
                    GenerateFinish.newBuilder().setFinishReason(FinishReason.FINISH_REASON_EOS_TOKEN).setUsage(USAGE))
                .build());
        response.onCompleted();
      }
      case "hang" -> {
        response.onNext(delta("Hel", 15043, -0.25f));
        held.countDown();
      }
      case "silent" -> held.countDown();
      case "invalid" ->
          response.onError(
              Status.INVALID_ARGUMENT.withDescription("`max_new_tokens` must be >= 1. Given: 0").asRuntimeException());
      case "truncated" -> {
        response.onNext(delta("Hel", 15043, -0.25f));
        response.onCompleted();
      }
      case "lost" -> {
        response.onNext(delta("Hel", 15043, -0.25f));
        response.onError(Status.UNAVAILABLE.withDescription("shard group group-0 was lost").asRuntimeException());
      }
      default -> response.onError(Status.UNIMPLEMENTED.withDescription(request.getPromptText()).asRuntimeException());
    }
  }

  @Override
  public void listModels(ListModelsRequest request, StreamObserver<ListModelsResponse> response) {
    response.onNext(
        ListModelsResponse.newBuilder()
            .addModels(Model.newBuilder().setName("mplug-owl2-llama2-7b").setSupportsImages(true).setNumImageTokens(65))
            .build());
    response.onCompleted();
  }
}
