package dev.owlery.shard.worker;

import dev.owlery.cluster.rpc.LostPeerTrailer;
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
import io.grpc.Context;
import io.grpc.Deadline;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
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
 *
 * <p>Meters, registered once per service and reading the slice loaded at the time: gauges
 * {@value #KV_BLOCKS_USED} and {@value #KV_BLOCKS_FREE} (0 and 0 when no slice is loaded) and the
 * timer {@value #STEP_DURATION} of every RunStep answered with logits, from received to answered.
 */
public final class ShardWorkerService extends ShardWorkerGrpc.ShardWorkerImplBase implements AutoCloseable {

  /** Gauge of KV blocks held by sequences on this rank. */
  public static final String KV_BLOCKS_USED = "owlery.kv.blocks.used";
  /** Gauge of KV blocks of the pool no sequence holds. */
  public static final String KV_BLOCKS_FREE = "owlery.kv.blocks.free";
  /** Timer of RunStep on this rank, received to answered (steps refused before running are not timed). */
  public static final String STEP_DURATION = "owlery.shard.step.duration";

  private static final Runnable NOTHING = () -> { };

  private final SliceLoader loader;
  private final Timer stepDuration;
  private final ThreadPoolExecutor stepThread;
  /** The highest placement epoch a LoadSlice came with; step thread only. */
  private long highestPlacementEpoch;
  /** The loaded slice; read and written by the step thread only. */
  private LoadedSlice<?> loaded;
  /** The loaded slice's collective, for other threads (metrics, close). */
  private volatile GrpcCollective collective;
  /** The loaded slice's sequences and blocks, for the gauges; null when none is loaded. */
  private volatile HeldSequences<?> heldSequences;

  /** A service that loads slices with {@code kernels} and all-reduces through {@code peers}. */
  public ShardWorkerService(ShardWorkerConfig config, Kernels kernels, MeterRegistry meters, ShardPeerService peers) {
    this.loader = new SliceLoader(config, kernels, meters, peers);
    this.stepThread = new ThreadPoolExecutor(1, 1, 0, TimeUnit.SECONDS,
        new ArrayBlockingQueue<>(config.maxQueuedCalls()),
        Thread.ofPlatform().name("owlery-shard-step").daemon().factory());
    // No base unit: Prometheus shows them as owlery_kv_blocks_used / _free, as the coordinator's.
    Gauge.builder(KV_BLOCKS_USED, this, service -> service.kvBlocks(true))
        .description("KV cache blocks held by sequences on this rank").register(meters);
    Gauge.builder(KV_BLOCKS_FREE, this, service -> service.kvBlocks(false))
        .description("KV cache blocks of this rank's pool that no sequence holds").register(meters);
    this.stepDuration = Timer.builder(STEP_DURATION).description("RunStep on this rank, received to answered")
        .publishPercentileHistogram().register(meters);
  }

  /** Used or free blocks of the loaded slice's pool; 0 when none is loaded. Any thread. */
  private double kvBlocks(boolean used) {
    HeldSequences<?> current = heldSequences;
    if (current == null) {
      return 0;
    }
    return used ? current.usedBlocks() : current.freeBlocks();
  }

  @Override
  public void loadSlice(LoadSliceRequest request, StreamObserver<LoadSliceResponse> responses) {
    submit(responses, () -> load(request), NOTHING);
  }

  @Override
  public void runStep(RunStepRequest request, StreamObserver<RunStepResponse> responses) {
    long received = System.nanoTime();
    long giveUpAt = giveUpAt(received);
    submit(responses, () -> requireLoaded().runStep(request, received, giveUpAt),
        () -> stepDuration.record(System.nanoTime() - received, TimeUnit.NANOSECONDS));
  }

  @Override
  public void releaseSequences(ReleaseSequencesRequest request, StreamObserver<ReleaseSequencesResponse> responses) {
    submit(responses, () -> ReleaseSequencesResponse.newBuilder()
        .setNumReleased(loaded == null ? 0 : loaded.release(request.getSequenceIdsList())).build(), NOTHING);
  }

  @Override
  public void runHealthStep(RunHealthStepRequest request, StreamObserver<RunHealthStepResponse> responses) {
    long giveUpAt = giveUpAt(System.nanoTime());
    submit(responses, () -> requireLoaded().runHealthStep(request, giveUpAt), NOTHING);
  }

  /**
   * When the all-reduces of the call being served give up waiting for a peer: four fifths into the
   * time its deadline leaves ({@link GrpcCollective#NO_DEADLINE} without one). A peer that went
   * silent (its link down, no reset) must be named in this rank's answer, which reaches the caller
   * before its deadline; otherwise every rank's call times out alike and the caller cannot tell the
   * silent rank from the live ones (it blamed both, and one standby could not re-form the group).
   */
  private static long giveUpAt(long received) {
    Deadline deadline = Context.current().getDeadline();
    return deadline == null ? GrpcCollective.NO_DEADLINE
        : received + deadline.timeRemaining(TimeUnit.NANOSECONDS) / 5 * 4;
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
    if (request.getPlacementEpoch() < highestPlacementEpoch) {
      throw new IllegalStateException(("LoadSlice of placement epoch %d refused: this shard was placed by epoch %d, "
          + "a later placement leader; the sender is no longer the leader").formatted(request.getPlacementEpoch(),
          highestPlacementEpoch));
    }
    highestPlacementEpoch = request.getPlacementEpoch();
    if (loaded != null && loaded.request().equals(request) && !loaded.collective().isBroken()) {
      // same arguments, group intact: the weights stay, but the coordinator sends LoadSlice only
      // when it forms the group, and after a re-forming it re-admits every sequence from position 0
      // (a shard that stayed up while the group was DOWN still holds them)
      loaded.releaseAll();
      return loaded.response();
    }
    release();
    LoadedSlice<?> slice = loader.load(request);
    loaded = slice;
    slice.collective().onBroken(() -> forgetSequences(slice));
    collective = loaded.collective();
    heldSequences = loaded.heldSequences();
    return loaded.response();
  }

  /**
   * Frees the KV blocks of {@code slice} once its group broke: no step runs on it again (each fails
   * naming the lost peer, and LoadSlice loads it anew) and the coordinator readmits its sequences
   * elsewhere. A rank cut off from its group kept them until it was placed again, showing blocks used
   * while it stood by. Queued on the step thread; with the queue full they go at the next load.
   */
  private void forgetSequences(LoadedSlice<?> slice) {
    try {
      stepThread.execute(() -> {
        if (loaded == slice) {
          slice.releaseAll();
        }
      });
    } catch (RejectedExecutionException e) {
      // full or shut down: the next load (or close) releases the slice with its blocks
    }
  }

  private void release() {
    if (loaded != null) {
      collective = null;
      heldSequences = null;
      LoadedSlice<?> old = loaded;
      loaded = null;
      old.close();
    }
  }

  private LoadedSlice<?> requireLoaded() {
    if (loaded == null) {
      throw new IllegalStateException("no slice is loaded on this shard; call LoadSlice first");
    }
    return loaded;
  }

  /**
   * Queues {@code work} on the step thread; its result or failure answers the call, then
   * {@code answered} runs if it succeeded.
   */
  private <T> void submit(StreamObserver<T> responses, Supplier<T> work, Runnable answered) {
    try {
      stepThread.execute(() -> {
        if (answer(responses, work)) {
          answered.run();
        }
      });
    } catch (RejectedExecutionException e) {
      Status status = stepThread.isShutdown()
          ? Status.UNAVAILABLE.withDescription("this shard is shutting down")
          : Status.RESOURCE_EXHAUSTED.withDescription(
              "this shard already has %d calls queued".formatted(stepThread.getQueue().size()));
      responses.onError(status.asRuntimeException());
    }
  }

  /** Runs {@code work} and answers with its result or failure; returns whether it succeeded. */
  private static <T> boolean answer(StreamObserver<T> responses, Supplier<T> work) {
    T result;
    try {
      result = work.get();
    } catch (PeerLostException e) {
      responses.onError(e.peerRank() >= 0 ? LostPeerTrailer.unavailable(e.getMessage(), e.peerRank(), e)
          : Status.UNAVAILABLE.withDescription(e.getMessage()).withCause(e).asRuntimeException());
      return false;
    } catch (RuntimeException | Error e) {
      responses.onError(e); // the server's ExceptionStatusInterceptor maps it
      return false;
    }
    responses.onNext(result);
    responses.onCompleted();
    return true;
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
