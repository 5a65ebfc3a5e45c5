package dev.owlery.coordinator.scheduler;

import dev.owlery.cluster.rpc.LostPeerTrailer;
import dev.owlery.coordinator.placement.ServingGroup;
import dev.owlery.coordinator.placement.ShardRank;
import dev.owlery.coordinator.placement.UnaryCalls;
import dev.owlery.proto.internal.v1.DType;
import dev.owlery.proto.internal.v1.LogitCandidates;
import dev.owlery.proto.internal.v1.RunStepRequest;
import dev.owlery.proto.internal.v1.RunStepResponse;
import dev.owlery.proto.internal.v1.ShardWorkerGrpc;
import dev.owlery.proto.internal.v1.StepSequence;
import dev.owlery.proto.internal.v1.Tensor;
import io.grpc.Status;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * One RunStep on every rank of a group at once (STYLE.md §7: one failed rank fails the step), each
 * with the step deadline; every answer is checked (step id, vocabulary slice, dtype, shape, bytes,
 * candidate counts and ids), and {@link #gather} then gathers each sequence's last row: its
 * vocabulary slices, or the ranks' candidates merged. Waiting ends early when
 * the group goes DOWN. A step is never abandoned for one client's cancel: the other sequences of
 * the batch need it, and every rank must run the same steps.
 */
final class StepFanOut {

  /** Extra wait past the deadline for gRPC to report it, so the wait itself is bounded too. */
  private static final long DEADLINE_SLACK_MS = 1000;

  /**
   * Runs {@code sequences} (each asking for its last row's logits, whole or as candidates) as one
   * step of {@code group} with {@code stepTimeout} as every rank's deadline, after the ranks forget
   * {@code released}; returns every rank's answer, in rank order, checked against {@code sequences}
   * (pass them to {@link #gather}).
   *
   * @throws StepFailure when a rank failed, did not answer in time, or answered something malformed
   */
  List<RunStepResponse> run(ServingGroup group, List<StepSequence> sequences, List<Long> released,
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
    checkAnswers(group, stepId, sequences, calls, stepTimeout);
    return calls.stream().map(CompletableFuture::resultNow).toList();
  }

  /**
   * Writes into {@code outputs.get(i)} sequence i's last row from the ranks' {@code answers} (checked
   * by {@link #run}, vocabulary slices included): its
   * slices of the row, or the ranks' candidates merged (the coordinator's per-step work, with the
   * sampling that follows).
   */
  static void gather(List<RunStepResponse> answers, List<StepSequence> sequences, List<LastRowLogits> outputs) {
    outputs.forEach(LastRowLogits::clear);
    for (RunStepResponse answer : answers) {
      int width = answer.getVocabEnd() - answer.getVocabStart();
      FloatBuffer slices = floats(answer.getLogits());
      LogitCandidates candidates = answer.getCandidates();
      IntBuffer counts = ints(candidates.getCounts());
      IntBuffer tokenIds = ints(candidates.getTokenIds());
      FloatBuffer logits = floats(candidates.getLogits());
      FloatBuffer logSumExps = floats(candidates.getLogSumExps());
      int row = 0;
      int candidateRow = 0;
      int at = 0;
      for (int i = 0; i < sequences.size(); i++) {
        if (sequences.get(i).getNumCandidates() > 0) {
          int count = counts.get(candidateRow);
          outputs.get(i).addCandidates(tokenIds, logits, at, count, logSumExps.get(candidateRow++));
          at += count;
        } else {
          outputs.get(i).addSlice(slices, row++ * width, answer.getVocabStart(), width);
        }
      }
    }
  }

  /** The longest time a rank took for the step, request received to answer ready. */
  static long slowestRankNanos(List<RunStepResponse> answers) {
    return answers.stream().mapToLong(answer -> answer.getTimings().getTotalNs()).max().orElse(0);
  }

  private static FloatBuffer floats(Tensor tensor) {
    return tensor.getData().asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
  }

  private static IntBuffer ints(Tensor tensor) {
    return tensor.getData().asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN).asIntBuffer();
  }

  /**
   * Throws naming every rank that failed. Ranks that did not answer or lost their transport, and
   * ranks a live shard names as its lost peer ({@link LostPeerTrailer}), are the lost ones; when
   * every failure is an answer from a live shard naming no peer, all failed ranks are.
   */
  private static void checkAnswers(ServingGroup group, long stepId, List<StepSequence> sequences,
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
        String problem = malformed(rank, stepId, sequences, call.resultNow());
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
  private static String malformed(ShardRank rank, long stepId, List<StepSequence> sequences,
      RunStepResponse response) {
    int width = rank.vocabEnd() - rank.vocabStart();
    if (response.getStepId() != stepId) {
      return "step_id " + response.getStepId();
    }
    if (response.getVocabStart() != rank.vocabStart() || response.getVocabEnd() != rank.vocabEnd()) {
      return "vocabulary slice [%d, %d) instead of [%d, %d) from LoadSlice".formatted(response.getVocabStart(),
          response.getVocabEnd(), rank.vocabStart(), rank.vocabEnd());
    }
    int numCandidateRows = (int) sequences.stream().filter(s -> s.getNumCandidates() > 0).count();
    int numRows = sequences.size() - numCandidateRows;
    String problem = wrongShape("logits", response.getLogits(), DType.DTYPE_F32, numRows, width);
    if (problem != null || numCandidateRows == 0) {
      return problem;
    }
    LogitCandidates candidates = response.getCandidates();
    problem = wrongShape("candidates.counts", candidates.getCounts(), DType.DTYPE_I32, numCandidateRows);
    if (problem == null) {
      problem = wrongShape("candidates.log_sum_exps", candidates.getLogSumExps(), DType.DTYPE_F32, numCandidateRows);
    }
    if (problem != null) {
      return problem;
    }
    IntBuffer counts = ints(candidates.getCounts());
    long total = 0;
    int candidateRow = 0;
    for (StepSequence sequence : sequences) {
      if (sequence.getNumCandidates() > 0) {
        int count = counts.get(candidateRow++);
        if (count < Math.min(sequence.getNumCandidates(), width) || count > width) {
          return "%d candidates for sequence %d, which asked for %d of a slice of %d".formatted(count,
              sequence.getSequenceId(), sequence.getNumCandidates(), width);
        }
        total += count;
      }
    }
    problem = wrongShape("candidates.token_ids", candidates.getTokenIds(), DType.DTYPE_I32, total);
    if (problem == null) {
      problem = wrongShape("candidates.logits", candidates.getLogits(), DType.DTYPE_F32, total);
    }
    if (problem != null) {
      return problem;
    }
    IntBuffer tokenIds = ints(candidates.getTokenIds());
    for (int i = 0; i < total; i++) {
      if (tokenIds.get(i) < rank.vocabStart() || tokenIds.get(i) >= rank.vocabEnd()) {
        return "candidate token id %d outside the slice [%d, %d)".formatted(tokenIds.get(i), rank.vocabStart(),
            rank.vocabEnd());
      }
    }
    return null;
  }

  /** What is wrong with {@code tensor} as {@code dtype} of {@code shape}, or null. */
  private static String wrongShape(String field, Tensor tensor, DType dtype, long... shape) {
    long elements = 1;
    List<Long> expected = new ArrayList<>();
    for (long size : shape) {
      elements *= size;
      expected.add(size);
    }
    long bytes = elements * 4; // every dtype used here is 4 bytes wide
    if (tensor.getDtype() != dtype || !tensor.getShapeList().equals(expected) || tensor.getData().size() != bytes) {
      return "%s %s %s of %d bytes; expected %s %s of %d bytes".formatted(field, tensor.getDtype(),
          tensor.getShapeList(), tensor.getData().size(), dtype, expected, bytes);
    }
    return null;
  }
}
