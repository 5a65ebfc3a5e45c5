package dev.owlery.shard.worker;

import dev.owlery.cluster.testing.GrpcCleanup;
import dev.owlery.engine.kernel.Kernels;
import dev.owlery.proto.internal.v1.KvCacheDtype;
import dev.owlery.proto.internal.v1.LoadSliceRequest;
import dev.owlery.proto.internal.v1.LoadSliceResponse;
import dev.owlery.proto.internal.v1.RunHealthStepRequest;
import dev.owlery.proto.internal.v1.RunHealthStepResponse;
import dev.owlery.proto.internal.v1.RunStepRequest;
import dev.owlery.proto.internal.v1.RunStepResponse;
import dev.owlery.proto.internal.v1.ShardWorkerGrpc;
import dev.owlery.proto.internal.v1.StepSequence;
import com.google.common.util.concurrent.ListenableFuture;
import io.grpc.ForwardingServerBuilder;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.ServerBuilder;
import io.grpc.Status;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.netty.NettyServerBuilder;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.net.InetSocketAddress;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * N shard workers as real Netty servers on 127.0.0.1:0 in this JVM, and the test acting as their
 * coordinator: sends every call to every rank at once and gathers the answers.
 */
final class ShardGroup {

  /** Deadline of every call the test makes. */
  static final Duration DEADLINE = Duration.ofSeconds(30);
  /** The KV pool every test group loads: 64 blocks of 16 positions, float32 (the tests compare with float32 in-process runs). */
  static final int NUM_KV_BLOCKS = 64;
  static final int BLOCK_SIZE = 16;

  final List<ShardWorkerServer> servers = new ArrayList<>();
  /** The io.grpc servers underneath, to kill one as a crash would. */
  final List<Server> transports = new ArrayList<>();
  final List<SimpleMeterRegistry> meters = new ArrayList<>();
  final List<String> addresses = new ArrayList<>();
  private final List<ShardWorkerGrpc.ShardWorkerFutureStub> stubs = new ArrayList<>();
  private String groupId;

  /** Starts {@code n} servers (not loaded), each registered with {@code cleanup}. */
  static ShardGroup start(int n, ShardWorkerConfig config, Kernels kernels, GrpcCleanup cleanup) {
    ShardGroup group = new ShardGroup();
    for (int r = 0; r < n; r++) {
      SimpleMeterRegistry registry = new SimpleMeterRegistry();
      CapturingServerBuilder builder =
          new CapturingServerBuilder(NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0)));
      ShardWorkerServer server = cleanup.register(
          ShardWorkerServer.create(builder, Duration.ofSeconds(2), config, kernels, registry).start());
      String address = "127.0.0.1:" + server.port();
      ManagedChannel channel = cleanup.register(NettyChannelBuilder.forTarget(address).usePlaintext().build());
      group.servers.add(server);
      group.transports.add(builder.built);
      group.meters.add(registry);
      group.addresses.add(address);
      group.stubs.add(ShardWorkerGrpc.newFutureStub(channel));
    }
    return group;
  }

  int size() {
    return servers.size();
  }

  ShardWorkerGrpc.ShardWorkerFutureStub stub(int rank) {
    return stubs.get(rank).withDeadlineAfter(DEADLINE.toMillis(), TimeUnit.MILLISECONDS);
  }

  /** LoadSlice on every rank at once (each returns once the group has formed), with a float32 KV pool. */
  List<LoadSliceResponse> load(Path modelDir, String group, int maxNumTokens, int maxNumSequences) {
    return gather(loadCalls(modelDir, group, maxNumTokens, maxNumSequences, KvCacheDtype.KV_CACHE_DTYPE_F32));
  }

  /** LoadSlice on every rank at once with a KV pool of {@code kvCacheDtype}; the calls, not awaited. */
  List<ListenableFuture<LoadSliceResponse>> loadCalls(Path modelDir, String group, int maxNumTokens,
      int maxNumSequences, KvCacheDtype kvCacheDtype) {
    this.groupId = group;
    List<ListenableFuture<LoadSliceResponse>> calls = new ArrayList<>();
    for (int r = 0; r < size(); r++) {
      calls.add(stub(r).loadSlice(LoadSliceRequest.newBuilder().setModelDir(modelDir.toString()).setRank(r)
          .setWorldSize(size()).setGroupId(group).addAllPeerAddresses(addresses).setMaxNumTokens(maxNumTokens)
          .setMaxNumSequences(maxNumSequences).setNumKvBlocks(NUM_KV_BLOCKS).setBlockSizeTokens(BLOCK_SIZE)
          .setKvCacheDtype(kvCacheDtype).build()));
    }
    return calls;
  }

  /** Every call's answer; fails the test naming the first rank's failure. */
  static <T> List<T> answers(List<ListenableFuture<T>> calls) {
    return gather(calls);
  }

  /**
   * {@code s} with the block table a block manager would send: consecutive blocks from
   * {@code firstBlock}, as many as cover its last position.
   */
  static StepSequence.Builder withBlocks(StepSequence.Builder s, int firstBlock) {
    int last = s.getPositions(s.getPositionsCount() - 1);
    s.clearBlockIds();
    for (int b = 0; b <= last / BLOCK_SIZE; b++) {
      s.addBlockIds(firstBlock + b);
    }
    return s;
  }

  String groupId() {
    return groupId;
  }

  /** The step, addressed to this group, sent to every rank at once. */
  List<RunStepResponse> step(RunStepRequest.Builder step) {
    RunStepRequest request = step.setGroupId(groupId).setWorldSize(size()).build();
    List<ListenableFuture<RunStepResponse>> calls = new ArrayList<>();
    for (int r = 0; r < size(); r++) {
      calls.add(stub(r).runStep(request));
    }
    return gather(calls);
  }

  /** The step sent to every rank at once; each rank's status (OK where it ran). */
  List<Status> stepStatuses(RunStepRequest.Builder step) {
    RunStepRequest request = step.setGroupId(groupId).setWorldSize(size()).build();
    List<ListenableFuture<RunStepResponse>> calls = new ArrayList<>();
    for (int r = 0; r < size(); r++) {
      calls.add(stub(r).runStep(request));
    }
    List<Status> statuses = new ArrayList<>();
    for (ListenableFuture<RunStepResponse> call : calls) {
      try {
        call.get(DEADLINE.toMillis(), TimeUnit.MILLISECONDS);
        statuses.add(Status.OK);
      } catch (ExecutionException e) {
        statuses.add(Status.fromThrowable(e.getCause()));
      } catch (InterruptedException | TimeoutException e) {
        throw new AssertionError(e);
      }
    }
    return statuses;
  }

  List<RunHealthStepResponse> healthStep(long stepId) {
    RunHealthStepRequest request = RunHealthStepRequest.newBuilder().setStepId(stepId).setGroupId(groupId)
        .setWorldSize(size()).build();
    List<ListenableFuture<RunHealthStepResponse>> calls = new ArrayList<>();
    for (int r = 0; r < size(); r++) {
      calls.add(stub(r).runHealthStep(request));
    }
    return gather(calls);
  }

  /** The full vocabulary rows, [rows, vocabSize], from every rank's slice. */
  static float[] gatherLogits(List<RunStepResponse> responses, int vocabSize) {
    int rows = (int) responses.getFirst().getLogits().getShape(0);
    float[] logits = new float[rows * vocabSize];
    for (RunStepResponse response : responses) {
      int local = response.getVocabEnd() - response.getVocabStart();
      FloatBuffer slice = response.getLogits().getData().asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN)
          .asFloatBuffer();
      for (int row = 0; row < rows; row++) {
        slice.get(row * local, logits, row * vocabSize + response.getVocabStart(), local);
      }
    }
    return logits;
  }

  private static <T> List<T> gather(List<ListenableFuture<T>> calls) {
    List<T> results = new ArrayList<>();
    try {
      for (ListenableFuture<T> call : calls) {
        results.add(call.get(DEADLINE.toMillis(), TimeUnit.MILLISECONDS));
      }
    } catch (ExecutionException e) {
      throw new AssertionError("a rank failed: " + e.getCause(), e.getCause());
    } catch (InterruptedException | TimeoutException e) {
      throw new AssertionError(e);
    }
    return results;
  }

  /** Keeps the io.grpc.Server it builds, so a test can shut it down now. */
  private static final class CapturingServerBuilder extends ForwardingServerBuilder<CapturingServerBuilder> {
    private final ServerBuilder<?> delegate;
    Server built;

    CapturingServerBuilder(ServerBuilder<?> delegate) {
      this.delegate = delegate;
    }

    @Override
    protected ServerBuilder<?> delegate() {
      return delegate;
    }

    @Override
    public Server build() {
      built = super.build();
      return built;
    }
  }
}
