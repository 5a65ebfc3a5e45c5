package dev.owlery.coordinator.scheduler;

import dev.owlery.coordinator.blocks.BlockAllocator;
import dev.owlery.coordinator.model.ServedModel;
import dev.owlery.coordinator.placement.GroupDirectory;
import dev.owlery.coordinator.placement.GroupState;
import dev.owlery.coordinator.placement.GroupStatus;
import dev.owlery.coordinator.placement.PlacementConfig;
import dev.owlery.coordinator.placement.ServingGroup;
import dev.owlery.coordinator.placement.ShardRank;
import dev.owlery.coordinator.placement.UnaryCalls;
import dev.owlery.proto.internal.v1.ReleaseSequencesRequest;
import dev.owlery.proto.v1.SchedulerStatus;
import io.grpc.Status;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Accepts generation jobs and runs them on READY shard groups: each group has one scheduler thread
 * and a bounded queue, and runs one sequence at a time ({@link SequenceRun}); a job goes to the
 * READY group with the fewest jobs; a job finding that group's queue full ({@link
 * SchedulerConfig#maxQueuedPerGroup}) gets RESOURCE_EXHAUSTED at once. Every sequence is released on every rank at its end — finished,
 * cancelled or failed — and its KV blocks freed. A step that fails reports the lost nodes to
 * placement (the group goes DOWN) and ends the request with UNAVAILABLE naming them. {@link
 * #submit} never blocks.
 */
public final class Scheduler implements AutoCloseable {

  private static final Logger LOG = Logger.getLogger(Scheduler.class.getName());

  /** A group's load, for GetClusterStatus. */
  public record GroupLoad(int numRunningSequences, int numKvBlocks, int numFreeKvBlocks) {}

  private final SchedulerConfig config;
  private final GroupDirectory directory;
  private final ServedModel model;
  private final int maxNumTokens;
  private final int numKvBlocks;
  private final int blockSizeTokens;
  private final GenerationMetrics metrics;
  private final StepFanOut fanOut;
  private final Map<String, GroupRunner> runners = new ConcurrentHashMap<>();

  public Scheduler(SchedulerConfig config, PlacementConfig placement, GroupDirectory directory, ServedModel model,
      GenerationMetrics metrics) {
    this.config = config;
    this.directory = directory;
    this.model = model;
    this.maxNumTokens = placement.maxNumTokens();
    this.numKvBlocks = placement.numKvBlocks(model.maxPositions());
    this.blockSizeTokens = placement.blockSizeTokens();
    this.metrics = metrics;
    this.fanOut = new StepFanOut(config.stepTimeout());
    metrics.watchScheduler(() -> status().getNumRunningSequences(), () -> status().getNumWaitingRequests());
  }

  /**
   * Queues {@code job} on the READY group with the fewest jobs; when none is READY or the queue is
   * full, the job's sink gets UNAVAILABLE or RESOURCE_EXHAUSTED at once.
   */
  public void submit(GenerationJob job) {
    List<ServingGroup> ready = directory.servingGroups();
    if (ready.isEmpty()) {
      job.sink().onError(Status.UNAVAILABLE.withDescription(noGroupReady()));
      return;
    }
    GroupRunner runner = ready.stream().map(group -> runners.computeIfAbsent(group.groupId(), GroupRunner::new))
        .min(Comparator.comparingInt(GroupRunner::numJobs)).orElseThrow();
    try {
      runner.executor.execute(() -> runner.run(job));
    } catch (RejectedExecutionException e) {
      metrics.rejected(GenerationMetrics.Limit.MAX_QUEUED_PER_GROUP);
      job.sink().onError(Status.RESOURCE_EXHAUSTED.withDescription(
          "shard group %s already has %d requests waiting (maxQueuedPerGroup %d); retry shortly".formatted(
              runner.groupId, config.maxQueuedPerGroup(), config.maxQueuedPerGroup())));
    }
  }

  private String noGroupReady() {
    List<GroupStatus> groups = directory.groupStatuses();
    if (groups.isEmpty()) {
      return "no shard group is READY: none has been formed yet (the coordinator waits for enough shard workers "
          + "to register); retry shortly";
    }
    List<String> states = new ArrayList<>();
    for (GroupStatus group : groups) {
      states.add(group.groupId() + " " + group.state() + (group.state() == GroupState.DOWN ? " (" + group.reason() + ")" : ""));
    }
    return "no shard group is READY (" + String.join(", ", states) + "); the shard groups are being (re-)formed; "
        + "retry shortly";
  }

  /** Requests waiting and sequences running, over all groups. */
  public SchedulerStatus status() {
    int waiting = 0;
    int running = 0;
    for (GroupRunner runner : runners.values()) {
      waiting += runner.executor.getQueue().size();
      running += runner.running ? 1 : 0;
    }
    return SchedulerStatus.newBuilder().setNumWaitingRequests(waiting).setNumRunningSequences(running).build();
  }

  /** The load of {@code groupId} (nothing running and every block free before its first job). */
  public GroupLoad load(String groupId) {
    GroupRunner runner = runners.get(groupId);
    return runner == null ? new GroupLoad(0, numKvBlocks, numKvBlocks)
        : new GroupLoad(runner.running ? 1 : 0, numKvBlocks, runner.numFreeBlocks);
  }

  /** Cancels what waits, interrupts what runs (its sequences are released), waits up to 5 s. */
  @Override
  public void close() {
    for (GroupRunner runner : runners.values()) {
      for (Runnable waiting : runner.executor.shutdownNow()) {
        LOG.fine(() -> "dropped a queued job of " + runner.groupId + ": " + waiting);
      }
    }
    for (GroupRunner runner : runners.values()) {
      try {
        runner.executor.awaitTermination(5, TimeUnit.SECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return;
      }
    }
  }

  /** One group's thread, queue and KV blocks. */
  private final class GroupRunner {
    final String groupId;
    final ThreadPoolExecutor executor;
    // Confined to the executor's thread.
    final BlockAllocator blocks = new BlockAllocator(numKvBlocks, blockSizeTokens);
    volatile boolean running;
    volatile int numFreeBlocks = numKvBlocks;

    GroupRunner(String groupId) {
      this.groupId = groupId;
      this.executor = new ThreadPoolExecutor(1, 1, 0, TimeUnit.SECONDS,
          new ArrayBlockingQueue<>(config.maxQueuedPerGroup()),
          Thread.ofPlatform().name("owlery-scheduler-" + groupId).daemon().factory());
    }

    int numJobs() {
      return executor.getQueue().size() + (running ? 1 : 0);
    }

    void run(GenerationJob job) {
      if (job.cancelled().isDone()) {
        return;
      }
      ServingGroup group = directory.servingGroups().stream().filter(g -> g.groupId().equals(groupId)).findFirst()
          .orElse(null);
      if (group == null) {
        job.sink().onError(Status.UNAVAILABLE.withDescription(
            "shard group " + groupId + " went down before the request started; " + noGroupReady()));
        return;
      }
      running = true;
      List<Integer> blockTable = new ArrayList<>();
      try {
        new SequenceRun(job, group, model, blocks, blockTable, fanOut, maxNumTokens, metrics).run();
      } catch (StepFailure failure) {
        directory.reportLost(group, failure.lostNodeIds(), failure.getMessage());
        job.sink().onError(Status.UNAVAILABLE.withDescription(
            failure.getMessage() + "; the shard group is being re-formed; retry shortly"));
      } catch (SequenceRun.NoFreeBlocks e) {
        job.sink().onError(e.status());
      } catch (InterruptedException e) {
        job.sink().onError(Status.UNAVAILABLE.withDescription("the coordinator is shutting down; retry on another"));
        Thread.currentThread().interrupt();
      } catch (RuntimeException e) {
        LOG.log(Level.SEVERE, "sequence " + job.sequenceId() + " failed on group " + groupId, e);
        job.sink().onError(Status.INTERNAL.withDescription("internal error: " + e).withCause(e));
      } finally {
        release(group, job.sequenceId());
        blocks.free(blockTable);
        numFreeBlocks = blocks.numFreeBlocks();
        running = false;
      }
    }

    /** Tells every rank to forget the sequence; answers are not awaited (a lost rank forgets anyway). */
    private void release(ServingGroup group, long sequenceId) {
      ReleaseSequencesRequest request = ReleaseSequencesRequest.newBuilder().addSequenceIds(sequenceId).build();
      for (ShardRank rank : group.ranks()) {
        UnaryCalls.call(rank.stub().withDeadlineAfter(config.releaseTimeout().toNanos(), TimeUnit.NANOSECONDS)
            ::releaseSequences, request).whenComplete((answer, error) -> {
              if (error != null) {
                LOG.log(Level.FINE, "releasing sequence " + sequenceId + " on " + rank.describe(groupId) + " failed",
                    error);
              }
            });
      }
    }
  }
}
