package dev.owlery.coordinator.testing;

import dev.owlery.cluster.membership.ClusterMember;
import dev.owlery.cluster.membership.MembershipConfig;
import dev.owlery.cluster.registry.NodeRecord;
import dev.owlery.cluster.registry.NodeRegistry;
import dev.owlery.cluster.registry.NodeResources;
import dev.owlery.cluster.registry.NodeRole;
import dev.owlery.cluster.registry.NodeState;
import dev.owlery.cluster.rpc.GrpcServer;
import dev.owlery.engine.config.LlamaConfig;
import dev.owlery.engine.decoder.Decoder;
import dev.owlery.engine.decoder.DecoderSequence;
import dev.owlery.engine.decoder.LogitRows;
import dev.owlery.engine.decoder.Modality;
import dev.owlery.engine.decoder.TensorParallelRank;
import dev.owlery.engine.decoder.VocabSlice;
import dev.owlery.engine.kernel.KernelsProvider;
import dev.owlery.engine.model.OwlModel;
import dev.owlery.proto.internal.v1.LoadSliceRequest;
import dev.owlery.proto.internal.v1.LoadSliceResponse;
import dev.owlery.proto.internal.v1.ReleaseSequencesRequest;
import dev.owlery.proto.internal.v1.ReleaseSequencesResponse;
import dev.owlery.proto.internal.v1.RunHealthStepRequest;
import dev.owlery.proto.internal.v1.RunHealthStepResponse;
import dev.owlery.proto.internal.v1.RunStepRequest;
import dev.owlery.proto.internal.v1.RunStepResponse;
import dev.owlery.proto.internal.v1.ShardWorkerGrpc;
import dev.owlery.proto.internal.v1.StepSequence;
import io.grpc.Status;
import io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.StreamObserver;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A test-only shard worker: a real Hazelcast member and gRPC server registered as SHARD_WORKER,
 * whose {@code ShardWorker} service runs the whole decoder in process (engine {@link Decoder}, one
 * slice) and answers each rank's vocabulary range of the full logits — the numbers a real group
 * gathers, without the peer all-reduce. {@link #stopAnswering()} makes RunStep hang, as a stuck
 * node does.
 */
public final class FakeShardWorkerNode implements AutoCloseable {

  private final String nodeId;
  private final ClusterMember member;
  private final NodeRegistry registry;
  private final GrpcServer server;
  private final OwlModel model;
  private final FakeService service;
  private final AtomicBoolean closed = new AtomicBoolean();

  private FakeShardWorkerNode(String nodeId, Path modelDir, MembershipConfig membership) {
    this.nodeId = nodeId;
    this.model = OwlModel.load(modelDir, 1, KernelsProvider.shared());
    this.service = new FakeService(model.decoder());
    this.member = ClusterMember.start(membership);
    this.registry = new NodeRegistry(member);
    this.server = new GrpcServer(NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0)),
        Duration.ofSeconds(1), new SimpleMeterRegistry(), List.of(service)).start();
    service.onLoaded = () -> registry.setState(nodeId, NodeState.READY);
    registry.register(NodeRecord.starting(nodeId, member.memberUuid(), NodeRole.SHARD_WORKER,
        "127.0.0.1:" + server.port(), "", new NodeResources(1, 1L << 30)));
  }

  public static FakeShardWorkerNode start(String nodeId, Path modelDir, MembershipConfig membership) {
    return new FakeShardWorkerNode(nodeId, modelDir, membership);
  }

  /** Starts fakes. */
  public static ShardWorkerLauncher launcher() {
    return FakeShardWorkerNode::start;
  }

  public String nodeId() {
    return nodeId;
  }

  /** "127.0.0.1:port" of its gRPC server, as registered. */
  public String grpcAddress() {
    return "127.0.0.1:" + server.port();
  }

  /** From now on RunStep calls are never answered (the node stays in the cluster). */
  public void stopAnswering() {
    service.stuck = true;
  }

  /** Makes every later RunStep take {@code delay} longer, as a slow shard would. */
  public void delaySteps(Duration delay) {
    service.stepDelay = delay;
  }

  /** RunStep calls this node has answered. */
  public int numStepsAnswered() {
    return service.numStepsAnswered;
  }

  /** Sequences released by ReleaseSequences (those this node held state for). */
  public int numReleased() {
    return service.numReleased;
  }

  /** Sequences this node holds KV state for now. */
  public int numSequencesHeld() {
    synchronized (service) {
      return service.sequences.size();
    }
  }

  /** Leaves at once, as a crash would (the member terminates); closing again does nothing. */
  @Override
  public void close() {
    if (!closed.compareAndSet(false, true)) {
      return;
    }
    server.close();
    registry.close();
    member.terminate();
    model.close();
  }

  private static final class FakeService extends ShardWorkerGrpc.ShardWorkerImplBase {
    private final Decoder decoder;
    private final Map<Long, DecoderSequence> sequences = new HashMap<>();
    private final float[] logits;
    private volatile boolean stuck;
    private volatile Duration stepDelay = Duration.ZERO;
    private volatile int numStepsAnswered;
    private volatile int numReleased;
    private Runnable onLoaded = () -> {};
    private String groupId = "";
    private int worldSize;
    private int rank;
    private int vocabStart;
    private int vocabEnd;

    FakeService(Decoder decoder) {
      this.decoder = decoder;
      this.logits = new float[decoder.config().vocabSize()];
    }

    @Override
    public synchronized void loadSlice(LoadSliceRequest request, StreamObserver<LoadSliceResponse> responses) {
      LlamaConfig config = decoder.config();
      groupId = request.getGroupId();
      worldSize = request.getWorldSize();
      rank = request.getRank();
      // the real shard's split: padded vocabulary slices, replicated kv heads
      TensorParallelRank tp = new TensorParallelRank(rank, worldSize);
      VocabSlice vocab = tp.vocab(config.vocabSize());
      vocabStart = vocab.start();
      vocabEnd = vocab.end();
      sequences.clear();
      responses.onNext(LoadSliceResponse.newBuilder().setVocabStart(vocabStart).setVocabEnd(vocabEnd)
          .setNumLocalHeads(tp.heads(config.numHeads()).size())
          .setNumLocalKvHeads(tp.kvHeads(config.numHeads(), config.numKvHeads()).size()).build());
      responses.onCompleted();
      onLoaded.run();
    }

    @Override
    public synchronized void runHealthStep(RunHealthStepRequest request,
        StreamObserver<RunHealthStepResponse> responses) {
      responses.onNext(RunHealthStepResponse.newBuilder().setGroupId(groupId).setRank(rank).setWorldSize(worldSize)
          .setReducedValue(worldSize * (worldSize + 1) / 2f).build());
      responses.onCompleted();
    }

    @Override
    public synchronized void runStep(RunStepRequest request, StreamObserver<RunStepResponse> responses) {
      if (stuck) {
        return; // never answered: the coordinator's step deadline must end the request
      }
      try {
        Thread.sleep(stepDelay);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      if (!request.getGroupId().equals(groupId) || request.getWorldSize() != worldSize) {
        throw Status.FAILED_PRECONDITION.withDescription("step for group " + request.getGroupId() + " of "
            + request.getWorldSize() + "; loaded " + groupId + " of " + worldSize).asRuntimeException();
      }
      request.getReleasedSequenceIdsList().forEach(sequences::remove);
      List<float[]> lastRows = new ArrayList<>();
      for (StepSequence sequence : request.getSequencesList()) {
        run(sequence);
        lastRows.add(Arrays.copyOfRange(logits, vocabStart, vocabEnd));
      }
      numStepsAnswered++;
      responses.onNext(StepAnswers.answer(request, lastRows, vocabStart, vocabEnd));
      responses.onCompleted();
    }

    /** Runs one sequence's rows, one after another (the real shard batches them), into {@code logits}. */
    private void run(StepSequence step) {
      DecoderSequence sequence = sequences.computeIfAbsent(step.getSequenceId(), id -> decoder.newSequence());
      int numTokens = step.getTokenIdsCount();
      if (step.getPositions(0) != sequence.length()) {
        throw new IllegalArgumentException("positions[0] is " + step.getPositions(0) + " but sequence "
            + step.getSequenceId() + " holds " + sequence.length() + " positions");
      }
      int hidden = decoder.config().hiddenSize();
      float[] inputs = new float[numTokens * hidden];
      Modality[] modalities = new Modality[numTokens];
      ByteBuffer imageRows = step.getImageEmbeddings().getData().asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
      for (int t = 0; t < numTokens; t++) {
        switch (step.getModalities(t)) {
          case MODALITY_TEXT -> {
            decoder.embed(step.getTokenIds(t), inputs, t * hidden);
            modalities[t] = Modality.TEXT;
          }
          case MODALITY_IMAGE -> {
            imageRows.asFloatBuffer().get(inputs, t * hidden, hidden);
            imageRows.position(imageRows.position() + hidden * Float.BYTES);
            modalities[t] = Modality.VISUAL;
          }
          case MODALITY_UNSPECIFIED, UNRECOGNIZED -> throw new IllegalArgumentException("modality " + t);
        }
      }
      decoder.forward(sequence, inputs, 0, modalities, numTokens, LogitRows.LAST, logits);
    }

    @Override
    public synchronized void releaseSequences(ReleaseSequencesRequest request,
        StreamObserver<ReleaseSequencesResponse> responses) {
      int released = 0;
      for (long id : request.getSequenceIdsList()) {
        released += sequences.remove(id) == null ? 0 : 1;
      }
      numReleased += released;
      responses.onNext(ReleaseSequencesResponse.newBuilder().setNumReleased(released).build());
      responses.onCompleted();
    }
  }
}
