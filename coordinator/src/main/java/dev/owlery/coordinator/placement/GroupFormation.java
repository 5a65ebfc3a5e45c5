package dev.owlery.coordinator.placement;

import dev.owlery.cluster.registry.NodeDevice;
import dev.owlery.cluster.registry.NodeRecord;
import dev.owlery.engine.kv.KvCacheDtype;
import dev.owlery.proto.internal.v1.LoadSliceRequest;
import dev.owlery.proto.internal.v1.LoadSliceResponse;
import dev.owlery.proto.internal.v1.RunHealthStepRequest;
import dev.owlery.proto.internal.v1.RunHealthStepResponse;
import dev.owlery.proto.internal.v1.ShardWorkerGrpc;
import io.grpc.Status;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Function;

/**
 * Brings a group's members up (shard_worker.proto): LoadSlice on every rank at once (they open the
 * peer streams between them), checks that the vocabulary slices tile the vocabulary in rank order,
 * then one RunHealthStep on every rank whose all-reduce must give {@code N(N+1)/2}. Blocks the
 * calling (placement) thread, each wait bounded by its deadline.
 */
final class GroupFormation {

  /** What went wrong: the ranks to blame (vacated and passed over) and a sentence saying why. */
  record Failure(List<Integer> blamedRanks, String reason) {}

  /** The outcome: the READY ranks and the KV blocks each holds, or a failure. */
  record Outcome(List<ShardRank> ranks, int numKvBlocks, Failure failure) {}

  private final PlacementConfig config;
  private final int vocabSize;
  private final int maxPositions;
  private final long kvBytesPerToken;
  private final DeviceKvSizing devices;
  private final Function<String, ShardWorkerGrpc.ShardWorkerStub> stubs;

  /**
   * @param kvBytesPerToken one position's keys and values on one shard of a group (in {@code config}'s KV dtype)
   * @param devices the memory plans of shards that serve from a device
   */
  GroupFormation(PlacementConfig config, int vocabSize, int maxPositions, long kvBytesPerToken, DeviceKvSizing devices,
      Function<String, ShardWorkerGrpc.ShardWorkerStub> stubs) {
    this.config = config;
    this.vocabSize = vocabSize;
    this.maxPositions = maxPositions;
    this.kvBytesPerToken = kvBytesPerToken;
    this.devices = devices;
    this.stubs = stubs;
  }

  /** The KV blocks every rank of a group will hold, or why a rank cannot hold one. */
  private record Sizing(int numKvBlocks, Failure failure) {}

  /**
   * Every rank holds the same blocks, so the smallest rank bounds the pool: a shard on the CPU
   * gives half its heap ({@link PlacementConfig#numKvBlocks}); a shard on a device what its memory
   * plan leaves after its slice's weights and workspace ({@link DeviceKvSizing}).
   */
  private Sizing size(String groupId, List<NodeRecord> members) {
    int blocks = Integer.MAX_VALUE;
    long smallestMemory = Long.MAX_VALUE;
    for (int r = 0; r < members.size(); r++) {
      NodeDevice device = members.get(r).resources().device();
      if (device == null) {
        smallestMemory = Math.min(smallestMemory, members.get(r).resources().memoryBytes());
        continue;
      }
      try {
        int planBlocks = devices.plan(device, r, members.size()).numKvBlocks();
        blocks = Math.min(blocks, config.numKvBlocksOnDevices(maxPositions, kvBytesPerToken, planBlocks));
      } catch (IllegalArgumentException e) {
        return new Sizing(0, new Failure(List.of(r), "shard worker %s cannot serve its slice from %s: %s"
            .formatted(describe(members.get(r), r, groupId), device.device(), e.getMessage())));
      }
    }
    if (smallestMemory != Long.MAX_VALUE) {
      blocks = Math.min(blocks, config.numKvBlocks(maxPositions, kvBytesPerToken, smallestMemory));
    }
    return new Sizing(blocks, null);
  }

  /**
   * @param placementId the formation's id, sent with every LoadSlice (shard_worker.proto)
   * @param epoch the placement leader's epoch, the LoadSlices' fencing token
   */
  Outcome form(String groupId, List<NodeRecord> members, long healthStepId, String placementId, long epoch)
      throws InterruptedException {
    int worldSize = members.size();
    List<String> addresses = members.stream().map(NodeRecord::grpcAddress).toList();
    Sizing sizing = size(groupId, members);
    if (sizing.failure() != null) {
      return new Outcome(List.of(), 0, sizing.failure());
    }
    int numKvBlocks = sizing.numKvBlocks();
    List<CompletableFuture<LoadSliceResponse>> loads = new ArrayList<>();
    for (int r = 0; r < worldSize; r++) {
      LoadSliceRequest request = LoadSliceRequest.newBuilder()
          .setModelDir(config.shardModelDir()).setRank(r).setWorldSize(worldSize).setGroupId(groupId)
          .addAllPeerAddresses(addresses).setNumKvBlocks(numKvBlocks).setBlockSizeTokens(config.blockSizeTokens())
          .setMaxNumTokens(config.maxNumTokens()).setMaxNumSequences(config.maxNumSequences())
          .setPlacementId(placementId).setPlacementEpoch(epoch).setKvCacheDtype(kvCacheDtype(config.kvCacheDtype())).build();
      ShardWorkerGrpc.ShardWorkerStub stub = stubs.apply(addresses.get(r))
          .withDeadlineAfter(config.loadTimeout().toNanos(), TimeUnit.NANOSECONDS);
      loads.add(UnaryCalls.call(stub::loadSlice, request));
    }
    Failure failure = failures("loading its slice", members, groupId, loads, config.loadTimeout());
    if (failure != null) {
      return new Outcome(List.of(), 0, failure);
    }
    failure = checkVocabularySlices(members, groupId, loads);
    if (failure != null) {
      return new Outcome(List.of(), 0, failure);
    }
    List<CompletableFuture<RunHealthStepResponse>> checks = new ArrayList<>();
    RunHealthStepRequest health = RunHealthStepRequest.newBuilder()
        .setStepId(healthStepId).setGroupId(groupId).setWorldSize(worldSize).build();
    for (int r = 0; r < worldSize; r++) {
      ShardWorkerGrpc.ShardWorkerStub stub = stubs.apply(addresses.get(r))
          .withDeadlineAfter(config.healthTimeout().toNanos(), TimeUnit.NANOSECONDS);
      checks.add(UnaryCalls.call(stub::runHealthStep, health));
    }
    failure = failures("the health step", members, groupId, checks, config.healthTimeout());
    if (failure != null) {
      return new Outcome(List.of(), 0, failure);
    }
    failure = checkHealthAnswers(members, groupId, checks);
    if (failure != null) {
      return new Outcome(List.of(), 0, failure);
    }
    List<ShardRank> ranks = new ArrayList<>();
    for (int r = 0; r < worldSize; r++) {
      LoadSliceResponse load = loads.get(r).resultNow();
      ranks.add(new ShardRank(members.get(r).nodeId(), addresses.get(r), r, load.getVocabStart(), load.getVocabEnd(),
          stubs.apply(addresses.get(r))));
    }
    return new Outcome(ranks, numKvBlocks, null);
  }

  /** Waits for every call (bounded), then names each rank whose call failed or did not answer. */
  private static <T> Failure failures(String what, List<NodeRecord> members, String groupId,
      List<CompletableFuture<T>> calls, Duration timeout) throws InterruptedException {
    awaitAll(calls, timeout);
    List<Integer> blamed = new ArrayList<>();
    List<String> reasons = new ArrayList<>();
    for (int r = 0; r < calls.size(); r++) {
      CompletableFuture<T> call = calls.get(r);
      if (call.isDone() && !call.isCompletedExceptionally()) {
        continue;
      }
      Status status = call.isDone() ? Status.fromThrowable(call.exceptionNow())
          : Status.DEADLINE_EXCEEDED.withDescription("no answer within " + timeout.toMillis() + " ms");
      call.cancel(true);
      blamed.add(r);
      reasons.add("shard worker %s failed %s: %s%s".formatted(describe(members.get(r), r, groupId), what,
          status.getCode(), status.getDescription() == null ? "" : ": " + status.getDescription()));
    }
    return blamed.isEmpty() ? null : new Failure(blamed, String.join("; ", reasons));
  }

  private Failure checkVocabularySlices(List<NodeRecord> members, String groupId,
      List<CompletableFuture<LoadSliceResponse>> loads) {
    int expectedStart = 0;
    List<String> slices = new ArrayList<>();
    boolean tiled = true;
    for (CompletableFuture<LoadSliceResponse> load : loads) {
      LoadSliceResponse response = load.resultNow();
      slices.add("[" + response.getVocabStart() + ", " + response.getVocabEnd() + ")");
      tiled &= response.getVocabStart() == expectedStart && response.getVocabEnd() > response.getVocabStart();
      expectedStart = response.getVocabEnd();
    }
    if (tiled && expectedStart == vocabSize) {
      return null;
    }
    List<Integer> all = new ArrayList<>();
    for (int r = 0; r < members.size(); r++) {
      all.add(r);
    }
    return new Failure(all, "the ranks of group %s answered vocabulary slices %s, which do not tile [0, %d) in rank order"
        .formatted(groupId, slices, vocabSize));
  }

  private static Failure checkHealthAnswers(List<NodeRecord> members, String groupId,
      List<CompletableFuture<RunHealthStepResponse>> checks) {
    int worldSize = members.size();
    float expected = worldSize * (worldSize + 1) / 2f;
    List<Integer> blamed = new ArrayList<>();
    List<String> reasons = new ArrayList<>();
    for (int r = 0; r < worldSize; r++) {
      RunHealthStepResponse answer = checks.get(r).resultNow();
      if (answer.getReducedValue() != expected || answer.getRank() != r || answer.getWorldSize() != worldSize
          || !answer.getGroupId().equals(groupId)) {
        blamed.add(r);
        reasons.add("shard worker %s answered the health step with group %s, rank %d of %d, reduced value %s; expected %s, %d of %d, %s"
            .formatted(describe(members.get(r), r, groupId), answer.getGroupId(), answer.getRank(),
                answer.getWorldSize(), answer.getReducedValue(), groupId, r, worldSize, expected));
      }
    }
    return blamed.isEmpty() ? null : new Failure(blamed, String.join("; ", reasons));
  }

  static String describe(NodeRecord member, int rank, String groupId) {
    return "%s (%s, rank %d of group %s)".formatted(member.nodeId(), member.grpcAddress(), rank, groupId);
  }

  /** Waits until every future is done or {@code timeout} (plus a second for the deadline to fire) passed. */
  static void awaitAll(List<? extends CompletableFuture<?>> futures, Duration timeout) throws InterruptedException {
    try {
      CompletableFuture.allOf(futures.toArray(CompletableFuture[]::new))
          .get(timeout.toMillis() + 1000, TimeUnit.MILLISECONDS);
    } catch (ExecutionException | TimeoutException e) {
      // Each future says for itself what happened.
    }
  }

  private static dev.owlery.proto.internal.v1.KvCacheDtype kvCacheDtype(KvCacheDtype dtype) {
    return switch (dtype) {
      case F16 -> dev.owlery.proto.internal.v1.KvCacheDtype.KV_CACHE_DTYPE_F16;
      case F32 -> dev.owlery.proto.internal.v1.KvCacheDtype.KV_CACHE_DTYPE_F32;
    };
  }
}
