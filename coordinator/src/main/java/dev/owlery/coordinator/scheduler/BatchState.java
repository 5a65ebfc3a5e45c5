package dev.owlery.coordinator.scheduler;

import dev.owlery.coordinator.blocks.BlockAllocator;
import dev.owlery.coordinator.model.ServedModel;
import dev.owlery.coordinator.placement.ServingGroup;
import dev.owlery.proto.v1.FinishReason;
import io.grpc.Status;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Queue;
import java.util.function.Predicate;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The sequences of one shard group's loop: those running, with the KV blocks they hold in the
 * current formation's pool, those preempted (waiting to be readmitted first, in admission order),
 * and the releases the shards are owed. Admission, the choice of each step's rows, block growth
 * (preempting the latest-admitted sequence when blocks run short) and leaving live here; {@link
 * GroupLoop} decides when, runs the steps and follows the group's formations. Confined to the
 * loop's thread.
 */
final class BatchState {

  private static final Logger LOG = Logger.getLogger(BatchState.class.getName());

  /** A sequence's rows in the step being built. */
  record Scheduled(SequenceState sequence, int rows) {}

  private final String groupId;
  private final GroupLoop.Limits limits;
  private final ServedModel model;
  private final GenerationMetrics metrics;
  private final List<SequenceState> running = new ArrayList<>();
  private final List<SequenceState> preempted = new ArrayList<>();
  private final PendingReleases releases;
  /** The KV blocks of the current formation (each formation's shards hold its own pool); null before the first. */
  private BlockAllocator blocks;
  private long nextOrder;

  BatchState(String groupId, GroupLoop.Limits limits, ServedModel model, GenerationMetrics metrics,
      PendingReleases releases) {
    this.groupId = groupId;
    this.limits = limits;
    this.model = model;
    this.metrics = metrics;
    this.releases = releases;
  }

  PendingReleases releases() {
    return releases;
  }

  /** A new formation serves: its pool of {@code numKvBlocks} is empty, and so are its shards. */
  void newFormation(int numKvBlocks) {
    blocks = new BlockAllocator(numKvBlocks, limits.blockSizeTokens());
    releases.clear();
  }

  /** Nothing running and nothing preempted. */
  boolean isIdle() {
    return running.isEmpty() && preempted.isEmpty();
  }

  boolean isRunning() {
    return !running.isEmpty();
  }

  int numRunning() {
    return running.size();
  }

  int numPreempted() {
    return preempted.size();
  }

  int numBlocks() {
    return blocks == null ? 0 : blocks.numBlocks();
  }

  int numUsedBlocks() {
    return blocks == null ? 0 : blocks.numBlocks() - blocks.numFreeBlocks();
  }

  /** Takes over sequences another group's loop preempted, to be readmitted behind those admitted here. */
  void adopt(Queue<SequenceState> adopted) {
    boolean any = false;
    for (SequenceState sequence; (sequence = adopted.poll()) != null; ) {
      sequence.moveTo(nextOrder++);
      preempted.add(sequence);
      any = true;
    }
    if (any) {
      preempted.sort(Comparator.comparingLong(SequenceState::order));
    }
  }

  /**
   * The formation {@code lost} ran on is gone: every running sequence is preempted (its blocks
   * freed, its rows to be recomputed) and the ranks still alive are told to forget them.
   */
  void preemptAll(ServingGroup lost) {
    for (SequenceState sequence : running) {
      blocks.free(sequence.blockTable());
      sequence.preempt();
      releases.add(sequence.sequenceId());
    }
    preempted.addAll(running);
    preempted.sort(Comparator.comparingLong(SequenceState::order));
    running.clear();
    releases.sendWithoutWaiting(lost); // the ranks still alive forget them; a re-formed group starts empty
    releases.clear();
  }

  /**
   * Passes the preempted sequences, in order, to {@code handOver} (another group's loop); those it
   * takes leave this batch.
   */
  void handOverPreempted(Predicate<SequenceState> handOver) {
    preempted.removeIf(handOver);
  }

  /** Ends every preempted sequence with {@code status} (the group did not come back in time). */
  void failPreempted(Status status) {
    for (SequenceState sequence : preempted) {
      if (!sequence.cancelled()) {
        sequence.job().sink().onError(status);
      }
    }
    preempted.clear();
  }

  /** Ends sequences whose client cancelled or whose deadline passed (nothing more is sent). */
  void dropCancelled() {
    for (SequenceState sequence : List.copyOf(running)) {
      if (sequence.cancelled()) {
        leave(sequence);
      }
    }
    preempted.removeIf(SequenceState::cancelled);
  }

  /** Readmits preempted sequences, then new ones from {@code waiting}, while the batch and the pool have room. */
  void admit(Queue<GenerationJob> waiting) {
    while (!preempted.isEmpty() && fits(preempted.getFirst().numPending())) {
      running.add(preempted.removeFirst());
    }
    if (!preempted.isEmpty()) {
      return; // preempted sequences go first
    }
    for (GenerationJob job; (job = waiting.peek()) != null; ) {
      if (job.cancelled().isDone()) {
        waiting.poll();
      } else if (fits(job.request().numPromptRows())) {
        start(waiting.poll());
      } else {
        break;
      }
    }
    running.sort(Comparator.comparingLong(SequenceState::order));
  }

  /** Room for one more sequence whose first step computes up to {@code numPendingRows} rows. */
  private boolean fits(int numPendingRows) {
    int firstRows = Math.min(numPendingRows, limits.maxNumTokens());
    return running.size() < limits.maxNumSequences()
        && blocks.numFreeBlocks() >= Math.ceilDiv(firstRows, limits.blockSizeTokens());
  }

  /** Adds {@code job} to the batch, or refuses it when its prompt alone needs more blocks than the pool has. */
  void start(GenerationJob job) {
    int needed = Math.ceilDiv(job.request().numPromptRows() + 1, limits.blockSizeTokens());
    if (needed > blocks.numBlocks()) {
      job.sink().onError(Status.RESOURCE_EXHAUSTED.withDescription(
          "the prompt (%d rows) and its first token need %d KV blocks of %d positions; shard group %s has %d in all"
              .formatted(job.request().numPromptRows(), needed, limits.blockSizeTokens(), groupId,
                  blocks.numBlocks())));
      return;
    }
    running.add(new SequenceState(job, model, metrics, nextOrder++));
  }

  /**
   * The next step's rows: every decoding sequence's next row, then prompt chunks within {@code
   * rowBudget} (the pacer's), their blocks grown; empty when nothing fits.
   */
  List<Scheduled> schedule(int rowBudget) {
    List<SequenceState> order = new ArrayList<>(running);
    order.sort(Comparator.comparing(SequenceState::prefilling).thenComparingLong(SequenceState::order));
    List<Scheduled> batch = new ArrayList<>();
    for (SequenceState sequence : order) {
      int used = numRows(batch);
      int budget = limits.maxNumTokens() - used;
      if (sequence.prefilling()) {
        // Prompt rows fill the pacer's budget; at least a block's worth per step, so prompts progress
        // even when the decoding rows alone use the budget up.
        boolean prefillScheduled = batch.stream().anyMatch(scheduled -> scheduled.sequence().prefilling());
        budget = Math.min(budget, Math.max(rowBudget - used, prefillScheduled ? 0 : limits.blockSizeTokens()));
      }
      if (budget <= 0) {
        continue;
      }
      int n = Math.min(sequence.numPending(), budget);
      if (running.contains(sequence) && reserve(sequence, n, batch)) {
        batch.add(new Scheduled(sequence, n));
      }
    }
    return batch;
  }

  static int numRows(List<Scheduled> batch) {
    return batch.stream().mapToInt(Scheduled::rows).sum();
  }

  /**
   * Grows {@code sequence}'s block table to cover its next {@code n} rows, preempting the
   * latest-admitted running sequences (dropping them from {@code batch}) while blocks are short;
   * false when {@code sequence} itself was preempted (or failed: alone, it outgrew the pool).
   */
  private boolean reserve(SequenceState sequence, int n, List<Scheduled> batch) {
    while (!blocks.cover(sequence.blockTable(), sequence.numComputed() + n - 1)) {
      SequenceState victim = running.getLast();
      if (victim == sequence && running.size() == 1) {
        fail(sequence, Status.RESOURCE_EXHAUSTED.withDescription(
            "the sequence outgrew the KV cache: %d positions need more than shard group %s's %d blocks of %d"
                .formatted(sequence.numComputed() + n, groupId, blocks.numBlocks(), limits.blockSizeTokens())));
        return false;
      }
      batch.removeIf(scheduled -> scheduled.sequence() == victim);
      running.remove(victim);
      blocks.free(victim.blockTable());
      victim.preempt();
      releases.add(victim.sequenceId());
      preempted.add(victim);
      preempted.sort(Comparator.comparingLong(SequenceState::order));
      metrics.preempted();
      if (victim == sequence) {
        return false;
      }
    }
    return true;
  }

  /** After a step computed {@code n} of its rows: samples, streams, and ends the sequence when it is done. */
  void advance(SequenceState sequence, int n) {
    sequence.computed(n);
    if (sequence.numPending() > 0) {
      return; // more prompt rows to come
    }
    if (sequence.cancelled()) {
      leave(sequence);
      return;
    }
    try {
      FinishReason reason = sequence.sampleNext();
      if (reason != null) {
        sequence.finish(reason);
        leave(sequence);
      }
    } catch (RuntimeException e) {
      LOG.log(Level.SEVERE, "sequence " + sequence.sequenceId() + " failed on group " + groupId, e);
      fail(sequence, Status.INTERNAL.withDescription("internal error: " + e).withCause(e));
    }
  }

  /** Removes {@code sequence} from the batch, frees its blocks and queues its release on the shards. */
  private void leave(SequenceState sequence) {
    running.remove(sequence);
    preempted.remove(sequence);
    blocks.free(sequence.blockTable());
    releases.add(sequence.sequenceId());
  }

  private void fail(SequenceState sequence, Status status) {
    leave(sequence);
    if (!sequence.cancelled()) {
      sequence.job().sink().onError(status);
    }
  }

  /**
   * Ends every running and preempted sequence with {@code status} and releases them on the ranks
   * of {@code group} still alive (null: no formation serves).
   */
  void failAll(Status status, ServingGroup group) {
    List<SequenceState> all = new ArrayList<>(running);
    all.addAll(preempted);
    for (SequenceState sequence : all) {
      fail(sequence, status);
    }
    if (!all.isEmpty() && group != null) {
      releases.sendWithoutWaiting(group); // the ranks still alive forget them; a re-formed group starts empty
    }
  }
}
