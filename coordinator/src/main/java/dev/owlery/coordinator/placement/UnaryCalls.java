package dev.owlery.coordinator.placement;

import io.grpc.Status;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import io.grpc.stub.StreamObserver;
import java.util.concurrent.CompletableFuture;
import java.util.function.BiConsumer;

/**
 * Unary gRPC calls as {@link CompletableFuture}s: the future completes on gRPC's thread with the
 * response or the call's {@code StatusRuntimeException}; cancelling the future cancels the call.
 */
public final class UnaryCalls {

  private UnaryCalls() {}

  /**
   * Starts {@code method} (an async stub method, deadline already set) with {@code request}.
   */
  public static <ReqT, RespT> CompletableFuture<RespT> call(
      BiConsumer<ReqT, StreamObserver<RespT>> method, ReqT request) {
    CompletableFuture<RespT> future = new CompletableFuture<>();
    method.accept(request, new ClientResponseObserver<ReqT, RespT>() {
      @Override
      public void beforeStart(ClientCallStreamObserver<ReqT> call) {
        future.whenComplete((response, error) -> {
          if (future.isCancelled()) {
            call.cancel("the caller stopped waiting", null);
          }
        });
      }

      @Override
      public void onNext(RespT response) {
        future.complete(response);
      }

      @Override
      public void onError(Throwable error) {
        future.completeExceptionally(error);
      }

      @Override
      public void onCompleted() {
        if (!future.isDone()) {
          future.completeExceptionally(
              Status.INTERNAL.withDescription("the server closed a unary call without a response").asRuntimeException());
        }
      }
    });
    return future;
  }
}
