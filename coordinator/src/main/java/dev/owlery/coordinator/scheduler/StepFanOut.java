package dev.owlery.coordinator.scheduler;

import dev.owlery.cluster.rpc.LostPeerTrailer;
import dev.owlery.coordinator.placement.ServingGroup;
import dev.owlery.coordinator.placement.ShardRank;
import dev.owlery.coordinator.placement.UnaryCalls;
import dev.owlery.proto.internal.v1.DType;
import dev.owlery.proto.internal.v1.RunStepRequest;
import dev.owlery.proto.internal.v1.RunStepResponse;
import dev.owlery.proto.internal.v1.ShardWorkerGrpc;
import dev.owlery.proto.internal.v1.StepSequence;
import dev.owlery.proto.internal.v1.Tensor;
import io.grpc.Status;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * One RunStep on every rank of a group at once (STYLE.md §7: one failed rank fails the step), each
 * with the step deadline; every answer is checked (step id, vocabulary slice, dtype, shape, bytes)
 * and the vocabulary slices are gathered into each sequence's full logits. Waiting ends early when
 * the group goes DOWN. A step is never abandoned for one client's cancel: the other sequences of
 * the batch need it, and every rank must run the same steps.
 */
final class StepFanOut {

  /** Extra wait past the deadline for gRPC to report it, so the wait itself is bounded too. */
  private static final long DEADLINE_SLACK_MS = 1000;

  /**
   * Runs {@code sequences} (each asking for its last row's logits) as one step of {@code group}
   * with {@code stepTimeout} as every rank's deadline, after the ranks forget {@code released}, and
   * writes sequence i's gathered logits (the full vocabulary) into {@code logits.get(i)}.
   *
   * @throws StepFailure when a rank failed, did not answer in time, or answered something malformed
   */
  void run(ServingGroup group, List<StepSequence> sequences, List<Long> released, List<float[]> logits,
      Duration stepTimeout) throws StepFailure, InterruptedException {
    long stepId = group.nextStepId();
    RunStepRequest request = RunStepRequest.newBuilder().setStepId(stepId).setGroupId(group.groupId())
        .setWorldSize(group.worldSize()).addAllSequences(sequences).addAllReleasedSequenceIds(released).build();
    List<CompletableFuture<RunStepResponse>> calls = new ArrayList<>(group.worldSize());
    for (ShardRank rank : group.ranks()) {
      ShardWorkerGrpc.ShardWorkerStub stub = rank.stub().withDeadlineAfter(stepTimeout.toNanos(), TimeUnit.NANOSECONDS);
      calls.add(UnaryCalls.call(stub::runStep, request));
    }
    CompletableFuture<Void> all = CompletableFuture.allOf(calls.toArray(CompletableFuture[]::new));
    try {
      CompletableFuture.anyOf(all, group.lost()).get(stepTimeout.toMillis() + DEADLINE_SLACK_MS,
          TimeUnit.MILLISECONDS);
    } catch (ExecutionException | TimeoutException e) {
      // Each call says for itself what happened.
    } catch (InterruptedException e) {
      calls.forEach(call -> call.cancel(true));
      throw e;
    }
    if (!all.isDone() && group.lost().isDone()) {
      calls.forEach(call -> call.cancel(true));
      throw new StepFailure(List.of(), "shard group %s went down during step %d: %s"
          .formatted(group.groupId(), stepId, group.lost().resultNow()));
    }
    checkAnswers(group, stepId, sequences.size(), calls, stepTimeout);
    for (int r = 0; r < calls.size(); r++) {
      ShardRank rank = group.ranks().get(r);
      int width = rank.vocabEnd() - rank.vocabStart();
      FloatBuffer slices = calls.get(r).resultNow().getLogits().getData().asReadOnlyByteBuffer()
          .order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
      for (int i = 0; i < sequences.size(); i++) {
        slices.get(i * width, logits.get(i), rank.vocabStart(), width);
      }
    }
  }

  /**
   * Throws naming every rank that failed. Ranks that did not answer or lost their transport, and
   * ranks a live shard names as its lost peer ({@link LostPeerTrailer}), are the lost ones; when
   * every failure is an answer from a live shard naming no peer, all failed ranks are.
   */
  private static void checkAnswers(ServingGroup group, long stepId, int numRows,
      List<CompletableFuture<RunStepResponse>> calls, Duration stepTimeout)
      throws StepFailure {
    List<String> failed = new ArrayList<>();
    List<String> unreachable = new ArrayList<>();
    List<String> reasons = new ArrayList<>();
    for (int r = 0; r < calls.size(); r++) {
      ShardRank rank = group.ranks().get(r);
      CompletableFuture<RunStepResponse> call = calls.get(r);
      String who = "shard worker " + rank.describe(group.groupId());
      if (!call.isDone() || isTimeout(call)) {
        call.cancel(true);
        failed.add(rank.nodeId());
        unreachable.add(rank.nodeId());
        reasons.add("%s did not answer step %d within %d ms".formatted(who, stepId, stepTimeout.toMillis()));
      } else if (call.isCompletedExceptionally()) {
        Status status = Status.fromThrowable(call.exceptionNow());
        failed.add(rank.nodeId());
        int lostPeer = LostPeerTrailer.lostPeerRank(call.exceptionNow());
        if (lostPeer >= 0 && lostPeer < group.worldSize()) {
          unreachable.add(group.ranks().get(lostPeer).nodeId()); // this rank is alive; it names the lost one
        } else if (status.getCode() == Status.Code.UNAVAILABLE && status.getCause() != null) {
          unreachable.add(rank.nodeId()); // a transport error raised on our side: the node is unreachable
        }
        reasons.add("%s failed step %d: %s%s".formatted(who, stepId, status.getCode(),
            status.getDescription() == null ? "" : ": " + status.getDescription()));
      } else {
        String problem = malformed(rank, stepId, numRows, call.resultNow());
        if (problem != null) {
          failed.add(rank.nodeId());
          reasons.add("%s answered step %d with %s".formatted(who, stepId, problem));
        }
      }
    }
    if (!failed.isEmpty()) {
      throw new StepFailure(unreachable.isEmpty() ? failed : unreachable.stream().distinct().toList(),
          String.join("; ", reasons));
    }
  }

  private static boolean isTimeout(CompletableFuture<RunStepResponse> call) {
    return call.isCompletedExceptionally()
        && Status.fromThrowable(call.exceptionNow()).getCode() == Status.Code.DEADLINE_EXCEEDED;
  }

  /** What is wrong with an answer, or null. */
  private static String malformed(ShardRank rank, long stepId, int numRows, RunStepResponse response) {
    int width = rank.vocabEnd() - rank.vocabStart();
    Tensor logits = response.getLogits();
    if (response.getStepId() != stepId) {
      return "step_id " + response.getStepId();
    }
    if (response.getVocabStart() != rank.vocabStart() || response.getVocabEnd() != rank.vocabEnd()) {
      return "vocabulary slice [%d, %d) instead of [%d, %d) from LoadSlice".formatted(response.getVocabStart(),
          response.getVocabEnd(), rank.vocabStart(), rank.vocabEnd());
    }
    long bytes = (long) numRows * width * Float.BYTES;
    if (logits.getDtype() != DType.DTYPE_F32 || !logits.getShapeList().equals(List.of((long) numRows, (long) width))
        || logits.getData().size() != bytes) {
      return "logits %s %s of %d bytes; expected DTYPE_F32 [%d, %d] of %d bytes".formatted(logits.getDtype(),
          logits.getShapeList(), logits.getData().size(), numRows, width, bytes);
    }
    return null;
  }
}
