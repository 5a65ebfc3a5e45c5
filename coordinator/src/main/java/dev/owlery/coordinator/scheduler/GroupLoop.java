package dev.owlery.coordinator.scheduler;

import dev.owlery.coordinator.blocks.BlockAllocator;
import dev.owlery.coordinator.model.ServedModel;
import dev.owlery.coordinator.placement.GroupDirectory;
import dev.owlery.coordinator.placement.ServingGroup;
import dev.owlery.proto.internal.v1.StepSequence;
import dev.owlery.proto.v1.FinishReason;
import io.grpc.Status;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.BlockingDeque;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.LinkedBlockingDeque;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * One shard group's continuous batching loop, on its own thread. Each iteration drops cancelled
 * sequences, admits waiting ones (preempted first, then new in arrival order) while the batch has
 * room ({@code maxNumSequences}) and the KV pool has blocks for their first rows, then runs ONE step
 * carrying every running sequence: decode rows first (one each), then prompt rows in chunks within
 * the token budget ({@code maxNumTokens}), so a new request's prefill shares steps with the others'
 * decoding. A sequence whose blocks cannot be grown preempts the latest-admitted running sequence
 * (its blocks freed, its rows recomputed when readmitted). Sequences that end (finished, cancelled,
 * deadline passed, failed) leave the batch at once and are released on the shards ({@link
 * PendingReleases}).
 *
 * <p>A step that fails reports the lost nodes to placement, which marks that formation lost at once
 * ({@link ServingGroup#lost()}); a formation placement takes down (a member left or drains) is
 * lost too. The group's sequences are then preempted (their rows recomputed later from the prompt
 * and the tokens already sent, which are not sent again) and, with the jobs still queued, handed to
 * the loop of another READY group, or kept and readmitted first once this group is re-formed. What
 * is neither readmitted nor handed over within {@link SchedulerConfig#reformTimeout} of the loss
 * ends with UNAVAILABLE naming the cause.
 */
final class GroupLoop {

  private static final Logger LOG = Logger.getLogger(GroupLoop.class.getName());
  private static final long IDLE_POLL_MS = 100;

  /** What the loop schedules against. */
  record Limits(int maxNumSequences, int maxNumTokens, int blockSizeTokens, int worldSize) {}

  private final String groupId;
  private final SchedulerConfig config;
  private final Limits limits;
  private final GroupDirectory directory;
  private final ServedModel model;
  private final GenerationMetrics metrics;
  private final StepFanOut fanOut;
  private final StepPacer pacer;
  private final BlockingDeque<GenerationJob> waiting;
  /** Preempted sequences handed over by the loops of groups that went DOWN; drained by this loop. */
  private final ConcurrentLinkedQueue<SequenceState> adopted = new ConcurrentLinkedQueue<>();
  /** Given this loop's group id: the loop of another READY group with the least load, or null. */
  private final Function<String, GroupLoop> readyElsewhere;
  private final Thread thread;
  // Confined to the loop thread.
  /** The KV blocks of the current formation (each formation's shards hold its own pool). */
  private BlockAllocator blocks;
  private final List<SequenceState> running = new ArrayList<>();
  private final List<SequenceState> preempted = new ArrayList<>();
  private final PendingReleases releases;
  private ServingGroup group;
  private long nextOrder;
  /** When the group went DOWN for this loop (0 while it serves), and why. */
  private long downSinceNanos;
  private String downCause = "";
  // Published for other threads.
  private volatile boolean closed;
  private volatile int numRunning;
  private volatile int numPreempted;
  private volatile int numUsedBlocks;
  private volatile int numBlocks;

  GroupLoop(String groupId, SchedulerConfig config, Limits limits, GroupDirectory directory, ServedModel model,
      GenerationMetrics metrics, StepFanOut fanOut, Function<String, GroupLoop> readyElsewhere) {
    this.groupId = groupId;
    this.readyElsewhere = readyElsewhere;
    this.config = config;
    this.limits = limits;
    this.directory = directory;
    this.model = model;
    this.metrics = metrics;
    this.fanOut = fanOut;
    this.pacer = new StepPacer(config.stepTimeout(), model.flopsPerRow() / limits.worldSize());
    this.waiting = new LinkedBlockingDeque<>(config.maxQueuedPerGroup());
    this.releases = new PendingReleases(config.releaseTimeout());
    this.thread = Thread.ofPlatform().name("owlery-scheduler-" + groupId).daemon().unstarted(this::run);
    thread.start();
  }

  String groupId() {
    return groupId;
  }

  /** Queues {@code job}; false when {@code maxQueuedPerGroup} jobs already wait. */
  boolean offer(GenerationJob job) {
    return !closed && waiting.offer(job);
  }

  /**
   * Takes over a preempted sequence of another group's loop, to be readmitted before new jobs;
   * false when this loop is closed.
   */
  boolean adopt(SequenceState sequence) {
    if (closed) {
      return false;
    }
    adopted.add(sequence);
    return true;
  }

  /** Jobs waiting (queued, preempted or adopted) and running: what placement of a new job compares. */
  int load() {
    return numWaiting() + numRunning;
  }

  int numWaiting() {
    return waiting.size() + adopted.size() + numPreempted;
  }

  int numRunning() {
    return numRunning;
  }

  int numUsedBlocks() {
    return numUsedBlocks;
  }

  /** The KV blocks of the formation in use; 0 before the first. */
  int numBlocks() {
    return numBlocks;
  }

  /** Stops the loop: every sequence, running or waiting, ends with UNAVAILABLE; waits up to 5 s. */
  void close() throws InterruptedException {
    closed = true;
    thread.interrupt();
    thread.join(TimeUnit.SECONDS.toMillis(5));
  }

  private void run() {
    while (!closed) {
      try {
        iterate();
      } catch (InterruptedException e) {
        break;
      } catch (RuntimeException e) {
        LOG.log(Level.SEVERE, "the scheduler loop of group " + groupId + " failed", e);
        failAll(Status.INTERNAL.withDescription("internal error: " + e).withCause(e));
      } finally {
        publish();
      }
    }
    Status shuttingDown = Status.UNAVAILABLE.withDescription("the coordinator is shutting down; retry on another");
    takeAdopted();
    failAll(shuttingDown);
    for (GenerationJob job; (job = waiting.poll()) != null; ) {
      job.sink().onError(shuttingDown);
    }
    publish();
  }

  private void iterate() throws InterruptedException {
    takeAdopted();
    ServingGroup current = directory.servingGroups().stream()
        .filter(g -> g.groupId().equals(groupId) && !g.lost().isDone()).findFirst().orElse(null);
    if (group != null && (current == null || current.formation() != group.formation())) {
      displaceAll("shard group " + groupId + " went DOWN (" + placementReason() + ")");
    }
    if (current != null && group == null) {
      blocks = new BlockAllocator(current.numKvBlocks(), limits.blockSizeTokens());
      releases.clear(); // a new formation's shards start empty
      if (downSinceNanos != 0) {
        long pausedMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - downSinceNanos);
        LOG.info(() -> "shard group %s is serving again after %d ms; readmitting %d sequence(s)"
            .formatted(groupId, pausedMs, preempted.size()));
      }
      downSinceNanos = 0;
    }
    group = current;
    if (current == null) {
      holdWhileDown();
      return;
    }
    dropCancelled();
    if (running.isEmpty() && preempted.isEmpty()) {
      releases.sendAndAwait(current);
      GenerationJob job = waiting.poll(IDLE_POLL_MS, TimeUnit.MILLISECONDS);
      if (job == null || job.cancelled().isDone()) {
        return;
      }
      start(job);
    }
    admit();
    publish();
    if (!running.isEmpty()) {
      step();
    }
  }

  /** Moves the sequences other loops handed over into the preempted list, behind those admitted here. */
  private void takeAdopted() {
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
   * The group lost the formation this loop ran on: every running sequence is preempted (its blocks
   * freed, its rows to be recomputed), the ranks still alive are told to forget them, and the time
   * and {@code cause} of the loss are kept for {@link #holdWhileDown}.
   */
  private void displaceAll(String cause) {
    for (SequenceState sequence : running) {
      blocks.free(sequence.blockTable());
      sequence.preempt();
      releases.add(sequence.sequenceId());
    }
    preempted.addAll(running);
    preempted.sort(Comparator.comparingLong(SequenceState::order));
    running.clear();
    releases.sendWithoutWaiting(group); // the ranks still alive forget them; a re-formed group starts empty
    releases.clear();
    group = null;
    if (downSinceNanos == 0) {
      downSinceNanos = System.nanoTime();
      downCause = cause;
      LOG.warning(() -> "%s; %d sequence(s) wait to be readmitted".formatted(cause, preempted.size()));
    }
  }

  /**
   * While the group is DOWN: hands the preempted sequences and the queued jobs to another READY
   * group's loop if there is one, else keeps them for the re-formed group; once {@link
   * SchedulerConfig#reformTimeout} has passed since the loss, ends what is left with UNAVAILABLE.
   */
  private void holdWhileDown() throws InterruptedException {
    if (downSinceNanos == 0) {
      downSinceNanos = System.nanoTime(); // jobs queued on a group that was never READY for this loop
      downCause = "shard group " + groupId + " is not READY (" + placementReason() + ")";
    }
    preempted.removeIf(SequenceState::cancelled);
    GroupLoop other = readyElsewhere.apply(groupId);
    if (other != null) {
      preempted.removeIf(other::adopt);
      for (GenerationJob job; (job = waiting.peek()) != null && other.offer(job); ) {
        waiting.poll();
      }
    }
    if (System.nanoTime() - downSinceNanos >= config.reformTimeout().toNanos()) {
      Status status = Status.UNAVAILABLE.withDescription("%s, and neither it nor another group was READY within %d ms; "
          .formatted(downCause, config.reformTimeout().toMillis()) + "retry when shard workers are back");
      for (SequenceState sequence : preempted) {
        if (!sequence.cancelled()) {
          sequence.job().sink().onError(status);
        }
      }
      preempted.clear();
      for (GenerationJob job; (job = waiting.poll()) != null; ) {
        if (!job.cancelled().isDone()) {
          job.sink().onError(status);
        }
      }
    }
    publish();
    TimeUnit.MILLISECONDS.sleep(IDLE_POLL_MS);
  }

  /** Placement's reason for this group's state (why it is DOWN), or its state when it gives none. */
  private String placementReason() {
    return directory.groupStatuses().stream().filter(status -> status.groupId().equals(groupId)).findFirst()
        .map(status -> status.reason().isEmpty() ? "it is " + status.state() : status.reason())
        .orElse("placement no longer lists it");
  }

  /** Ends sequences whose client cancelled or whose deadline passed (nothing more is sent). */
  private void dropCancelled() {
    for (SequenceState sequence : List.copyOf(running)) {
      if (sequence.cancelled()) {
        leave(sequence);
      }
    }
    preempted.removeIf(SequenceState::cancelled);
  }

  /** Readmits preempted sequences, then new ones, while the batch and the pool have room. */
  private void admit() {
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
  private void start(GenerationJob job) {
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
   * Picks the step's rows — every decoding sequence's next row, then prompt chunks within the
   * pacer's row budget — grows their blocks, runs it.
   */
  private void step() throws InterruptedException {
    List<SequenceState> order = new ArrayList<>(running);
    order.sort(Comparator.comparing(SequenceState::prefilling).thenComparingLong(SequenceState::order));
    List<Scheduled> batch = new ArrayList<>();
    int rowBudget = pacer.rowBudget(limits.maxNumTokens());
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
    if (batch.isEmpty()) {
      return;
    }
    publish();
    List<StepSequence> rows = new ArrayList<>(batch.size());
    List<float[]> logits = new ArrayList<>(batch.size());
    for (Scheduled scheduled : batch) {
      rows.add(scheduled.sequence().nextRows(scheduled.rows()));
      logits.add(scheduled.sequence().logits());
    }
    boolean prefill = batch.stream().anyMatch(scheduled -> scheduled.sequence().prefilling());
    int numRows = numRows(batch);
    long start = System.nanoTime();
    try {
      fanOut.run(group, rows, releases.forStep(), logits, pacer.deadline(numRows));
    } catch (StepFailure failure) {
      directory.reportLost(group, failure.lostNodeIds(), failure.getMessage());
      displaceAll(failure.getMessage());
      return;
    }
    long nanos = System.nanoTime() - start;
    releases.clear();
    pacer.observe(numRows, nanos);
    metrics.step(prefill, nanos, batch.size());
    for (Scheduled scheduled : batch) {
      advance(scheduled.sequence(), scheduled.rows());
    }
  }

  /** A sequence's rows in the step being built. */
  private record Scheduled(SequenceState sequence, int rows) {}

  private static int numRows(List<Scheduled> batch) {
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
  private void advance(SequenceState sequence, int n) {
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

  /** Ends every running and preempted sequence with {@code status} and releases them on the shards. */
  private void failAll(Status status) {
    List<SequenceState> all = new ArrayList<>(running);
    all.addAll(preempted);
    for (SequenceState sequence : all) {
      fail(sequence, status);
    }
    if (!all.isEmpty() && group != null) {
      releases.sendWithoutWaiting(group); // the ranks still alive forget them; a re-formed group starts empty
    }
  }

  private void publish() {
    numRunning = running.size();
    numPreempted = preempted.size();
    numBlocks = blocks == null ? 0 : blocks.numBlocks();
    numUsedBlocks = blocks == null ? 0 : blocks.numBlocks() - blocks.numFreeBlocks();
  }
}
