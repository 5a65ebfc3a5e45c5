package dev.owlery.shard.worker;

import dev.owlery.engine.kernel.Kernels;
import dev.owlery.proto.internal.v1.LoadSliceRequest;
import dev.owlery.proto.internal.v1.LoadSliceResponse;
import dev.owlery.proto.internal.v1.ReleaseSequencesRequest;
import dev.owlery.proto.internal.v1.ReleaseSequencesResponse;
import dev.owlery.proto.internal.v1.RunHealthStepRequest;
import dev.owlery.proto.internal.v1.RunHealthStepResponse;
import dev.owlery.proto.internal.v1.RunStepRequest;
import dev.owlery.proto.internal.v1.RunStepResponse;
import dev.owlery.proto.internal.v1.ShardWorkerGrpc;
import dev.owlery.shard.collective.GrpcCollective;
import dev.owlery.shard.collective.PeerLostException;
import dev.owlery.shard.collective.ShardPeerService;
import dev.owlery.shard.collective.StepTraffic;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import io.micrometer.core.instrument.MeterRegistry;
import java.util.Optional;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/**
 * The ShardWorker service: every call runs on one step thread, in arrival order, so steps never
 * overlap and gRPC's threads never wait (handlers queue the call and return). Failures become
 * statuses: a lost peer or broken group UNAVAILABLE naming the peer, a request that does not fit
 * the loaded slice FAILED_PRECONDITION, bad input INVALID_ARGUMENT, a step past the LoadSlice
 * capacity RESOURCE_EXHAUSTED. A step is run even when its caller has given up: every rank must run
 * the same steps for the all-reduces to pair up.
 */
public final class ShardWorkerService extends ShardWorkerGrpc.ShardWorkerImplBase implements AutoCloseable {

  private final SliceLoader loader;
  private final ThreadPoolExecutor stepThread;
  /** The loaded slice; read and written by the step thread only. */
  private LoadedSlice loaded;
  /** The loaded slice's collective, for other threads (metrics, close). */
  private volatile GrpcCollective collective;

  /** A service that loads slices with {@code kernels} and all-reduces through {@code peers}. */
  public ShardWorkerService(ShardWorkerConfig config, Kernels kernels, MeterRegistry meters, ShardPeerService peers) {
    this.loader = new SliceLoader(config, kernels, meters, peers);
    this.stepThread = new ThreadPoolExecutor(1, 1, 0, TimeUnit.SECONDS,
        new ArrayBlockingQueue<>(config.maxQueuedCalls()),
        Thread.ofPlatform().name("owlery-shard-step").daemon().factory());
  }

  @Override
  public void loadSlice(LoadSliceRequest request, StreamObserver<LoadSliceResponse> responses) {
    submit(responses, () -> load(request));
  }

  @Override
  public void runStep(RunStepRequest request, StreamObserver<RunStepResponse> responses) {
    long received = System.nanoTime();
    submit(responses, () -> requireLoaded().runStep(request, received));
  }

  @Override
  public void releaseSequences(ReleaseSequencesRequest request, StreamObserver<ReleaseSequencesResponse> responses) {
    submit(responses, () -> ReleaseSequencesResponse.newBuilder()
        .setNumReleased(loaded == null ? 0 : loaded.release(request.getSequenceIdsList())).build());
  }

  @Override
  public void runHealthStep(RunHealthStepRequest request, StreamObserver<RunHealthStepResponse> responses) {
    submit(responses, () -> requireLoaded().runHealthStep(request));
  }

  /** The loaded slice's collective, if any (its traffic, its state). */
  public Optional<GrpcCollective> collective() {
    return Optional.ofNullable(collective);
  }

  /** Traffic of the last step of the loaded slice; {@link StepTraffic#NONE} when none. */
  public StepTraffic lastStep() {
    GrpcCollective current = collective;
    return current == null ? StepTraffic.NONE : current.lastStep();
  }

  private LoadSliceResponse load(LoadSliceRequest request) {
    if (loaded != null && loaded.request().equals(request) && !loaded.collective().isBroken()) {
      return loaded.response(); // same arguments, group intact: nothing to do
    }
    release();
    loaded = loader.load(request);
    collective = loaded.collective();
    return loaded.response();
  }

  private void release() {
    if (loaded != null) {
      collective = null;
      LoadedSlice old = loaded;
      loaded = null;
      old.close();
    }
  }

  private LoadedSlice requireLoaded() {
    if (loaded == null) {
      throw new IllegalStateException("no slice is loaded on this shard; call LoadSlice first");
    }
    return loaded;
  }

  /** Queues {@code work} on the step thread; its result or failure answers the call. */
  private <T> void submit(StreamObserver<T> responses, Supplier<T> work) {
    try {
      stepThread.execute(() -> answer(responses, work));
    } catch (RejectedExecutionException e) {
      Status status = stepThread.isShutdown()
          ? Status.UNAVAILABLE.withDescription("this shard is shutting down")
          : Status.RESOURCE_EXHAUSTED.withDescription(
              "this shard already has %d calls queued".formatted(stepThread.getQueue().size()));
      responses.onError(status.asRuntimeException());
    }
  }

  private static <T> void answer(StreamObserver<T> responses, Supplier<T> work) {
    T result;
    try {
      result = work.get();
    } catch (PeerLostException e) {
      responses.onError(Status.UNAVAILABLE.withDescription(e.getMessage()).withCause(e).asRuntimeException());
      return;
    } catch (RuntimeException | Error e) {
      responses.onError(e); // the server's ExceptionStatusInterceptor maps it
      return;
    }
    responses.onNext(result);
    responses.onCompleted();
  }

  /**
   * Leaves the group (a step waiting on peers fails at once), lets the step thread finish within
   * 5 s, then unmaps the slice.
   */
  @Override
  public void close() {
    GrpcCollective current = collective;
    if (current != null) {
      current.close();
    }
    stepThread.shutdown();
    try {
      if (!stepThread.awaitTermination(5, TimeUnit.SECONDS)) {
        stepThread.shutdownNow();
        stepThread.awaitTermination(5, TimeUnit.SECONDS);
      }
    } catch (InterruptedException e) {
      stepThread.shutdownNow();
      Thread.currentThread().interrupt();
    }
    if (stepThread.isTerminated()) {
      release();
    }
  }
}
