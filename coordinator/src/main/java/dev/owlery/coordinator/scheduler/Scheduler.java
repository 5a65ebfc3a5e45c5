package dev.owlery.coordinator.scheduler;

import dev.owlery.coordinator.model.ServedModel;
import dev.owlery.coordinator.placement.GroupDirectory;
import dev.owlery.coordinator.placement.GroupStatus;
import dev.owlery.coordinator.placement.PlacementConfig;
import dev.owlery.coordinator.placement.ServingGroup;
import dev.owlery.proto.v1.SchedulerStatus;
import io.grpc.Status;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.logging.Logger;

/**
 * Accepts generation jobs and runs them on READY shard groups with continuous batching: each group
 * has one {@link GroupLoop} (a thread, a bounded waiting queue, the group's KV block manager) whose
 * every step carries all of its running sequences; a job goes to the READY group with the least
 * load (when none is READY, the group of the least load, to wait for its re-formation); a job
 * finding that group's queue full ({@link SchedulerConfig#maxQueuedPerGroup}) gets
 * RESOURCE_EXHAUSTED at once. Every sequence is released on every rank at its end — finished,
 * cancelled or failed — and its KV blocks freed. {@link #submit} never blocks.
 */
public final class Scheduler implements AutoCloseable {

  private static final Logger LOG = Logger.getLogger(Scheduler.class.getName());

  /**
   * A group's load, for GetClusterStatus.
   *
   * @param numWaitingSequences jobs queued on the group and preempted sequences waiting to be readmitted
   */
  public record GroupLoad(int numWaitingSequences, int numRunningSequences, int numKvBlocks, int numFreeKvBlocks) {}

  private final SchedulerConfig config;
  private final GroupDirectory directory;
  private final ServedModel model;
  private final GroupLoop.Limits limits;
  private final GenerationMetrics metrics;
  private final StepFanOut fanOut = new StepFanOut();
  private final SamplingPool sampling = SamplingPool.perCore();
  private final Map<String, GroupLoop> loops = new ConcurrentHashMap<>();

  public Scheduler(SchedulerConfig config, PlacementConfig placement, GroupDirectory directory, ServedModel model,
      GenerationMetrics metrics) {
    this.config = config;
    this.directory = directory;
    this.model = model;
    this.limits = new GroupLoop.Limits(placement.maxNumSequences(), placement.maxNumTokens(),
        placement.blockSizeTokens(), placement.worldSize());
    this.metrics = metrics;
    metrics.watchScheduler(() -> status().getNumRunningSequences(), () -> status().getNumWaitingRequests());
    metrics.watchKvBlocks(() -> loops.values().stream().mapToInt(GroupLoop::numUsedBlocks).sum(),
        () -> loops.values().stream().mapToInt(loop -> loop.numBlocks() - loop.numUsedBlocks()).sum());
  }

  /**
   * Queues {@code job} on the READY group with the least load, or when none is READY on the DOWN or
   * FORMING group with the least load (it waits there up to {@link SchedulerConfig#reformTimeout});
   * when no group was ever placed or the queue is full, the job's sink gets UNAVAILABLE or
   * RESOURCE_EXHAUSTED at once.
   */
  public void submit(GenerationJob job) {
    List<String> candidates = directory.servingGroups().stream().map(ServingGroup::groupId).toList();
    if (candidates.isEmpty()) {
      // Every group is DOWN or FORMING: the job waits on one for its re-formation (bounded by reformTimeout).
      candidates = directory.groupStatuses().stream().map(GroupStatus::groupId).filter(directory::drives).toList();
    }
    if (candidates.isEmpty()) {
      job.sink().onError(Status.UNAVAILABLE.withDescription(directory.groupStatuses().isEmpty() ? noGroupFormed()
          : ("this coordinator drives none of the cluster's %d shard groups (each is stepped by one coordinator); "
              + "send the request to another coordinator").formatted(directory.groupStatuses().size())));
      return;
    }
    GroupLoop loop = candidates.stream().map(groupId -> loops.computeIfAbsent(groupId, this::newLoop))
        .min(Comparator.comparingInt(GroupLoop::load)).orElseThrow();
    if (!loop.offer(job)) {
      metrics.rejected(GenerationMetrics.Limit.MAX_QUEUED_PER_GROUP);
      job.sink().onError(Status.RESOURCE_EXHAUSTED.withDescription(
          "shard group %s already has %d requests waiting (maxQueuedPerGroup %d); retry shortly".formatted(
              loop.groupId(), config.maxQueuedPerGroup(), config.maxQueuedPerGroup())));
    }
  }

  private GroupLoop newLoop(String groupId) {
    return new GroupLoop(groupId, config, limits, directory, model, metrics, fanOut, sampling,
        this::readyLoopOtherThan);
  }

  /** The loop of the READY group other than {@code groupId} with the least load, or null when there is none. */
  private GroupLoop readyLoopOtherThan(String groupId) {
    return directory.servingGroups().stream().filter(group -> !group.groupId().equals(groupId))
        .map(group -> loops.computeIfAbsent(group.groupId(), this::newLoop))
        .min(Comparator.comparingInt(GroupLoop::load)).orElse(null);
  }

  private static String noGroupFormed() {
    return "no shard group is READY: none has been formed yet (the coordinator waits for enough shard workers "
        + "to register); retry shortly";
  }

  /** Requests waiting (queued or preempted) and sequences running, over all groups. */
  public SchedulerStatus status() {
    int waiting = 0;
    int running = 0;
    for (GroupLoop loop : loops.values()) {
      waiting += loop.numWaiting();
      running += loop.numRunning();
    }
    return SchedulerStatus.newBuilder().setNumWaitingRequests(waiting).setNumRunningSequences(running).build();
  }

  /**
   * The load of {@code groupId}: before its first job nothing waits or runs and every block of its READY
   * formation is free; a group that is not READY and never ran holds no blocks.
   */
  public GroupLoad load(String groupId) {
    GroupLoop loop = loops.get(groupId);
    int waiting = loop == null ? 0 : loop.numWaiting();
    if (loop != null && loop.numBlocks() > 0) {
      return new GroupLoad(waiting, loop.numRunning(), loop.numBlocks(), loop.numBlocks() - loop.numUsedBlocks());
    }
    int blocks = directory.servingGroups().stream().filter(group -> group.groupId().equals(groupId))
        .mapToInt(ServingGroup::numKvBlocks).findFirst().orElse(0);
    return new GroupLoad(waiting, 0, blocks, blocks);
  }

  /** Ends what waits and what runs with UNAVAILABLE (their sequences are released), waits up to 5 s per group. */
  @Override
  public void close() {
    for (GroupLoop loop : loops.values()) {
      try {
        loop.close();
      } catch (InterruptedException e) {
        LOG.fine(() -> "interrupted while closing the loop of " + loop.groupId());
        Thread.currentThread().interrupt();
        break;
      }
    }
    sampling.close();
  }
}
