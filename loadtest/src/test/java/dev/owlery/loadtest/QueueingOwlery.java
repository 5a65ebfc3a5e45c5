package dev.owlery.loadtest;

import dev.owlery.proto.v1.FinishReason;
import dev.owlery.proto.v1.GenerateDelta;
import dev.owlery.proto.v1.GenerateFinish;
import dev.owlery.proto.v1.GenerateRequest;
import dev.owlery.proto.v1.GenerateResponse;
import dev.owlery.proto.v1.GetClusterStatusRequest;
import dev.owlery.proto.v1.GetClusterStatusResponse;
import dev.owlery.proto.v1.ListModelsRequest;
import dev.owlery.proto.v1.ListModelsResponse;
import dev.owlery.proto.v1.Model;
import dev.owlery.proto.v1.NodeStatus;
import dev.owlery.proto.v1.OwleryGrpc;
import dev.owlery.proto.v1.TokenizeRequest;
import dev.owlery.proto.v1.TokenizeResponse;
import dev.owlery.proto.v1.Usage;
import io.grpc.Grpc;
import io.grpc.InsecureServerCredentials;
import io.grpc.Server;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * A coordinator stand-in that serves one request at a time, like a server with a single slot: a
 * request waits until the ones before it are done, then takes {@code service} for its first token
 * and {@code interToken} for each further one. Below 1 / service requests/s latency stays near the
 * service time; above it the queue, and so time to first token, grows with every request. Token
 * ids are 1000 + their position. Runs on a real Netty server on loopback.
 */
final class QueueingOwlery extends OwleryGrpc.OwleryImplBase implements AutoCloseable {

  static final int VOCAB_SIZE = 32_000;

  private final long serviceNanos;
  private final long interTokenNanos;
  private final ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor(
      Thread.ofPlatform().name("queueing-owlery-timer").daemon().factory());
  private final Server server;
  /** The nodes GetClusterStatus lists (none unless a test adds them). */
  final List<NodeStatus> nodes = Collections.synchronizedList(new ArrayList<>());
  /** When set, every request from then on fails with this status (a broken cluster). */
  volatile io.grpc.Status failWith;
  /** Every request received, in arrival order. */
  final List<GenerateRequest> received = Collections.synchronizedList(new ArrayList<>());
  private long busyUntil;

  QueueingOwlery(long serviceNanos, long interTokenNanos) throws IOException {
    this.serviceNanos = serviceNanos;
    this.interTokenNanos = interTokenNanos;
    this.server = Grpc.newServerBuilderForPort(0, InsecureServerCredentials.create()).addService(this).build().start();
  }

  String address() {
    return "127.0.0.1:" + server.getPort();
  }

  @Override
  public void generate(GenerateRequest request, StreamObserver<GenerateResponse> response) {
    received.add(request);
    if (failWith != null) {
      response.onError(failWith.asRuntimeException());
      return;
    }
    int tokens = request.hasMaxNewTokens() ? request.getMaxNewTokens() : 16;
    long now = System.nanoTime();
    long firstToken;
    synchronized (this) {
      long start = Math.max(now, busyUntil);
      firstToken = start + serviceNanos;
      busyUntil = firstToken + (tokens - 1) * interTokenNanos;
    }
    sendToken(request, response, 0, tokens, firstToken - now);
  }

  private void sendToken(GenerateRequest request, StreamObserver<GenerateResponse> response, int index, int tokens,
      long delayNanos) {
    timer.schedule(() -> {
      response.onNext(GenerateResponse.newBuilder()
          .setDelta(GenerateDelta.newBuilder().setText("t" + index).addTokenIds(1000 + index)).build());
      if (index + 1 < tokens) {
        sendToken(request, response, index + 1, tokens, interTokenNanos);
        return;
      }
      response.onNext(GenerateResponse.newBuilder().setFinish(GenerateFinish.newBuilder()
          .setFinishReason(FinishReason.FINISH_REASON_MAX_NEW_TOKENS)
          .setUsage(Usage.newBuilder()
              .setNumPromptTokens(request.getPromptTokenIds().getTokenIdsCount())
              .setNumImageTokens(65 * request.getImagesCount())
              .setNumCompletionTokens(tokens)))
          .build());
      response.onCompleted();
    }, delayNanos, TimeUnit.NANOSECONDS);
  }

  /** BOS, then one id per whitespace-separated word: a known count for expected outputs. */
  @Override
  public void tokenize(TokenizeRequest request, StreamObserver<TokenizeResponse> response) {
    TokenizeResponse.Builder ids = TokenizeResponse.newBuilder().addTokenIds(1).addTokens("<s>");
    for (String word : request.getText().trim().split("\\s+")) {
      ids.addTokenIds(1000 + ids.getTokenIdsCount()).addTokens(word);
    }
    response.onNext(ids.build());
    response.onCompleted();
  }

  @Override
  public void listModels(ListModelsRequest request, StreamObserver<ListModelsResponse> response) {
    response.onNext(ListModelsResponse.newBuilder()
        .addModels(Model.newBuilder().setName("queueing").setVocabSize(VOCAB_SIZE).setMaxPositions(2048)
            .setSupportsImages(true).setNumImageTokens(65))
        .build());
    response.onCompleted();
  }

  @Override
  public void getClusterStatus(GetClusterStatusRequest request, StreamObserver<GetClusterStatusResponse> response) {
    response.onNext(GetClusterStatusResponse.newBuilder().addAllNodes(List.copyOf(nodes)).build());
    response.onCompleted();
  }

  @Override
  public void close() throws InterruptedException {
    server.shutdownNow();
    timer.shutdownNow();
    if (!server.awaitTermination(5, TimeUnit.SECONDS)) {
      throw new IllegalStateException("the fake coordinator did not stop within 5 s");
    }
  }
}
