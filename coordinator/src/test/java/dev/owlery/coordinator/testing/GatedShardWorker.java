package dev.owlery.coordinator.testing;

import dev.owlery.coordinator.placement.ServingGroup;
import dev.owlery.coordinator.placement.ShardRank;
import dev.owlery.proto.internal.v1.ReleaseSequencesRequest;
import dev.owlery.proto.internal.v1.ReleaseSequencesResponse;
import dev.owlery.proto.internal.v1.RunStepRequest;
import dev.owlery.proto.internal.v1.RunStepResponse;
import dev.owlery.proto.internal.v1.ShardWorkerGrpc;
import io.grpc.ManagedChannel;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A one-rank shard worker for scheduler tests: every RunStep answers logits whose argmax is
 * {@code token} over the whole vocabulary, but only once the gate is open; until then the calls are
 * held, so requests pile up behind a running one. Thread-safe.
 */
public final class GatedShardWorker extends ShardWorkerGrpc.ShardWorkerImplBase {

  private record Held(RunStepRequest request, StreamObserver<RunStepResponse> responses) {}

  private final int vocabSize;
  private final int token;
  // Guarded by this.
  private final List<Held> held = new ArrayList<>();
  // Guarded by this.
  private boolean open;

  /** Answers with logit 1 at {@code token} and 0 elsewhere; the gate starts {@code open} or closed. */
  public GatedShardWorker(int vocabSize, int token, boolean open) {
    this.vocabSize = vocabSize;
    this.token = token;
    this.open = open;
  }

  /** The READY group of this one rank (256 KV blocks), reached over {@code channel}. */
  public ServingGroup group(String groupId, ManagedChannel channel) {
    return new ServingGroup(groupId, 1, List.of(new ShardRank("shard-0", "in-process", 0, 0, vocabSize,
        ShardWorkerGrpc.newStub(channel))), 256, new AtomicLong(), new CompletableFuture<>());
  }

  @Override
  public void runStep(RunStepRequest request, StreamObserver<RunStepResponse> responses) {
    synchronized (this) {
      if (!open) {
        held.add(new Held(request, responses));
        return;
      }
    }
    answer(request, responses);
  }

  private void answer(RunStepRequest request, StreamObserver<RunStepResponse> responses) {
    if (((ServerCallStreamObserver<RunStepResponse>) responses).isCancelled()) {
      return; // the coordinator gave the step up (its request was cancelled)
    }
    List<float[]> lastRows = new ArrayList<>();
    for (int i = 0; i < request.getSequencesCount(); i++) {
      float[] row = new float[vocabSize];
      row[token] = 1f;
      lastRows.add(row);
    }
    responses.onNext(StepAnswers.answer(request, lastRows, 0, vocabSize));
    responses.onCompleted();
  }

  /** Steps held now (waiting for the gate). */
  public synchronized int numHeld() {
    return held.size();
  }

  /** Opens the gate: the held steps are answered (on the calling thread), and every later one at once. */
  public void open() {
    List<Held> toAnswer;
    synchronized (this) {
      open = true;
      toAnswer = List.copyOf(held);
      held.clear();
    }
    toAnswer.forEach(step -> answer(step.request(), step.responses()));
  }

  @Override
  public void releaseSequences(ReleaseSequencesRequest request, StreamObserver<ReleaseSequencesResponse> responses) {
    responses.onNext(ReleaseSequencesResponse.newBuilder().setNumReleased(request.getSequenceIdsCount()).build());
    responses.onCompleted();
  }
}
