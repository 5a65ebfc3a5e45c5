package dev.owlery.coordinator.scheduler;

import dev.owlery.coordinator.model.ServedModel;
import dev.owlery.coordinator.placement.GroupDirectory;
import dev.owlery.coordinator.placement.ServingGroup;
import dev.owlery.coordinator.scheduler.BatchState.Scheduled;
import dev.owlery.proto.internal.v1.RunStepResponse;
import dev.owlery.proto.internal.v1.StepSequence;
import io.grpc.Status;
import java.util.ArrayList;
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
 * PendingReleases}). The batch itself, its blocks and its admission rules are a {@link BatchState};
 * this loop follows the group's formations and runs the steps.
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
  private final GenerationMetrics metrics;
  private final StepFanOut fanOut;
  private final SamplingPool sampling;
  private final StepPacer pacer;
  private final BlockingDeque<GenerationJob> waiting;
  /** Preempted sequences handed over by the loops of groups that went DOWN; drained by this loop. */
  private final ConcurrentLinkedQueue<SequenceState> adopted = new ConcurrentLinkedQueue<>();
  /** Given this loop's group id: the loop of another READY group with the least load, or null. */
  private final Function<String, GroupLoop> readyElsewhere;
  private final Thread thread;
  // Confined to the loop thread.
  private final BatchState batch;
  private ServingGroup group;
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
      GenerationMetrics metrics, StepFanOut fanOut, SamplingPool sampling, Function<String, GroupLoop> readyElsewhere) {
    this.groupId = groupId;
    this.readyElsewhere = readyElsewhere;
    this.config = config;
    this.limits = limits;
    this.directory = directory;
    this.metrics = metrics;
    this.fanOut = fanOut;
    this.sampling = sampling;
    this.pacer = new StepPacer(config.stepTimeout(), model.flopsPerRow() / limits.worldSize(),
        config.profile().priorFlopsPerSecond());
    this.waiting = new LinkedBlockingDeque<>(config.maxQueuedPerGroup());
    this.batch = new BatchState(groupId, limits, model, metrics, new PendingReleases(config.releaseTimeout()));
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
        batch.failAll(Status.INTERNAL.withDescription("internal error: " + e).withCause(e), group);
      } finally {
        publish();
      }
    }
    Status shuttingDown = Status.UNAVAILABLE.withDescription("the coordinator is shutting down; retry on another");
    batch.adopt(adopted);
    batch.failAll(shuttingDown, group);
    for (GenerationJob job; (job = waiting.poll()) != null; ) {
      job.sink().onError(shuttingDown);
    }
    publish();
  }

  private void iterate() throws InterruptedException {
    batch.adopt(adopted);
    ServingGroup current = directory.servingGroups().stream()
        .filter(g -> g.groupId().equals(groupId) && !g.lost().isDone()).findFirst().orElse(null);
    if (group != null && (current == null || current.formation() != group.formation())) {
      displaceAll("shard group " + groupId + " went DOWN (" + placementReason() + ")");
    }
    if (current != null && group == null) {
      batch.newFormation(current.numKvBlocks());
      if (downSinceNanos != 0) {
        long pausedMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - downSinceNanos);
        LOG.info(() -> "shard group %s is serving again after %d ms; readmitting %d sequence(s)"
            .formatted(groupId, pausedMs, batch.numPreempted()));
      }
      downSinceNanos = 0;
    }
    group = current;
    if (current == null) {
      holdWhileDown();
      return;
    }
    batch.dropCancelled();
    if (batch.isIdle()) {
      batch.releases().sendAndAwait(current);
      GenerationJob job = waiting.poll(IDLE_POLL_MS, TimeUnit.MILLISECONDS);
      if (job == null || job.cancelled().isDone()) {
        return;
      }
      batch.start(job);
    }
    batch.admit(waiting);
    publish();
    if (batch.isRunning()) {
      step();
    }
  }

  /**
   * The group lost the formation this loop ran on: every running sequence is preempted (its blocks
   * freed, its rows to be recomputed), the ranks still alive are told to forget them, and the time
   * and {@code cause} of the loss are kept for {@link #holdWhileDown}.
   */
  private void displaceAll(String cause) {
    batch.preemptAll(group);
    group = null;
    if (downSinceNanos == 0) {
      downSinceNanos = System.nanoTime();
      downCause = cause;
      LOG.warning(() -> "%s; %d sequence(s) wait to be readmitted".formatted(cause, batch.numPreempted()));
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
    batch.dropCancelled();
    GroupLoop other = readyElsewhere.apply(groupId);
    if (other != null) {
      batch.handOverPreempted(other::adopt);
      for (GenerationJob job; (job = waiting.peek()) != null && other.offer(job); ) {
        waiting.poll();
      }
    }
    if (System.nanoTime() - downSinceNanos >= config.reformTimeout().toNanos()) {
      Status status = Status.UNAVAILABLE.withDescription("%s, and neither it nor another group was READY within %d ms; "
          .formatted(downCause, config.reformTimeout().toMillis()) + "retry when shard workers are back");
      batch.failPreempted(status);
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

  /** Runs one step of the batch's next rows on the group; a failure reports the lost nodes and preempts everything. */
  private void step() throws InterruptedException {
    List<Scheduled> scheduled = batch.schedule(pacer.rowBudget(limits.maxNumTokens()));
    if (scheduled.isEmpty()) {
      return;
    }
    publish();
    List<StepSequence> rows = new ArrayList<>(scheduled.size());
    List<LastRowLogits> logits = new ArrayList<>(scheduled.size());
    for (Scheduled s : scheduled) {
      rows.add(s.sequence().nextRows(s.rows()));
      logits.add(s.sequence().logits());
    }
    boolean prefill = scheduled.stream().anyMatch(s -> s.sequence().prefilling());
    int numRows = BatchState.numRows(scheduled);
    long start = System.nanoTime();
    List<RunStepResponse> answers;
    try {
      answers = fanOut.run(group, rows, batch.releases().forStep(), pacer.deadline(numRows));
    } catch (StepFailure failure) {
      directory.reportLost(group, failure.lostNodeIds(), failure.getMessage());
      displaceAll(failure.getMessage());
      return;
    }
    long answered = System.nanoTime();
    batch.releases().clear();
    pacer.observe(numRows, answered - start);
    metrics.step(prefill, answered - start, scheduled.size());
    for (RunStepResponse answer : answers) {
      metrics.logitsReceived(answer.getLogits().getSerializedSize() + answer.getCandidates().getSerializedSize());
    }
    // The coordinator's own work on the step: gathering the rows or merging candidates, picking the
    // tokens (in parallel), then detokenizing and streaming them.
    StepFanOut.gather(answers, rows, logits);
    sampling.pickAll(scheduled.stream().filter(s -> s.sequence().samplesAfter(s.rows()) && !s.sequence().cancelled())
        .map(Scheduled::sequence).toList());
    for (Scheduled s : scheduled) {
      batch.advance(s.sequence(), s.rows());
    }
    metrics.coordinatorWork(System.nanoTime() - answered, StepFanOut.slowestRankNanos(answers));
  }

  private void publish() {
    numRunning = batch.numRunning();
    numPreempted = batch.numPreempted();
    numBlocks = batch.numBlocks();
    numUsedBlocks = batch.numUsedBlocks();
  }
}
