package dev.owlery.shard.worker;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.owlery.cluster.testing.GrpcCleanup;
import dev.owlery.engine.kernel.ScalarKernels;
import dev.owlery.engine.testing.Fixtures;
import dev.owlery.proto.internal.v1.KvCacheDtype;
import dev.owlery.proto.internal.v1.LoadSliceRequest;
import dev.owlery.proto.internal.v1.Modality;
import dev.owlery.proto.internal.v1.ReleaseSequencesRequest;
import dev.owlery.proto.internal.v1.RunStepRequest;
import dev.owlery.proto.internal.v1.ShardWorkerGrpc;
import dev.owlery.proto.internal.v1.StepSequence;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.assertj.core.api.ThrowableAssert.ThrowingCallable;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * What a shard refuses, and with which status, on a group of one (no peers needed): in-process
 * transport, one stories260K slice.
 */
class ShardWorkerValidationTest {

  @RegisterExtension final GrpcCleanup cleanup = new GrpcCleanup();

  private Path dir;
  private ShardWorkerGrpc.ShardWorkerBlockingStub stub;

  @BeforeEach
  void start() {
    dir = Fixtures.stories260k();
    String name = InProcessServerBuilder.generateName();
    ShardWorkerConfig config = ShardWorkerConfig.defaults().withAllowedModelDirs(List.of(dir.getParent()));
    cleanup.register(ShardWorkerServer.create(InProcessServerBuilder.forName(name).directExecutor(),
        Duration.ofSeconds(2), config, new ScalarKernels(), new SimpleMeterRegistry()).start());
    stub = ShardWorkerGrpc.newBlockingStub(cleanup.register(InProcessChannelBuilder.forName(name).build()));
  }

  private ShardWorkerGrpc.ShardWorkerBlockingStub call() {
    return stub.withDeadlineAfter(10, TimeUnit.SECONDS);
  }

  private LoadSliceRequest.Builder load(int worldSize) {
    LoadSliceRequest.Builder request = LoadSliceRequest.newBuilder().setModelDir(dir.toString()).setRank(0)
        .setWorldSize(worldSize).setGroupId("solo").setMaxNumTokens(8).setMaxNumSequences(2)
        .setNumKvBlocks(8).setBlockSizeTokens(4).setKvCacheDtype(KvCacheDtype.KV_CACHE_DTYPE_F16);
    for (int r = 0; r < worldSize; r++) {
      request.addPeerAddresses("127.0.0.1:1");
    }
    return request;
  }

  /** Text rows of {@code sequenceId}, with blocks {@code 4 * (sequenceId - 1)} on as its table (4 positions each). */
  private static StepSequence.Builder text(long sequenceId, int firstPosition, int... ids) {
    StepSequence.Builder s = StepSequence.newBuilder().setSequenceId(sequenceId);
    for (int i = 0; i < ids.length; i++) {
      s.addTokenIds(ids[i]).addPositions(firstPosition + i).addModalities(Modality.MODALITY_TEXT);
    }
    for (int b = 0; b <= (firstPosition + ids.length - 1) / 4; b++) {
      s.addBlockIds((int) (sequenceId - 1) * 4 + b);
    }
    return s;
  }

  private static RunStepRequest step(long stepId, StepSequence.Builder... sequences) {
    RunStepRequest.Builder request = RunStepRequest.newBuilder().setStepId(stepId).setGroupId("solo").setWorldSize(1);
    for (StepSequence.Builder s : sequences) {
      request.addSequences(s);
    }
    return request.build();
  }

  private static void assertStatus(ThrowingCallable call, Status.Code code, String... fragments) {
    assertThatThrownBy(call).isInstanceOfSatisfying(StatusRuntimeException.class, e -> {
      assertThat(e.getStatus().getCode()).as(e.getStatus().toString()).isEqualTo(code);
      assertThat(e.getStatus().getDescription()).contains(fragments);
    });
  }

  @Test
  void loadSliceRefusesWhatCannotBeSplitOrIsNotAllowed() {
    assertStatus(() -> call().runStep(step(1, text(1, 0, 1))), Status.Code.FAILED_PRECONDITION,
        "no slice is loaded");
    assertStatus(() -> call().loadSlice(load(3).build()), Status.Code.INVALID_ARGUMENT,
        "num_attention_heads (8)", "tensor-parallel size (3)");
    assertStatus(() -> call().loadSlice(load(2).clearPeerAddresses().addPeerAddresses("127.0.0.1:1").build()),
        Status.Code.INVALID_ARGUMENT, "peer_addresses must hold world_size (2)");
    assertStatus(() -> call().loadSlice(load(1).setMaxNumTokens(0).build()), Status.Code.INVALID_ARGUMENT,
        "max_num_tokens must be >= 1. Given: 0");
    assertStatus(() -> call().loadSlice(load(1).setModelDir("/etc").build()), Status.Code.PERMISSION_DENIED,
        "model_dir /etc is outside");
    assertStatus(() -> call().loadSlice(load(1).clearKvCacheDtype().build()), Status.Code.INVALID_ARGUMENT,
        "kv_cache_dtype must be KV_CACHE_DTYPE_F16 or KV_CACHE_DTYPE_F32. Given: 0");
    var loaded = call().loadSlice(load(1).build());
    // stories260K: 5 layers x 4 kv heads x 8, keys and values, 8 blocks of 4 positions, F16
    assertThat(loaded.getKvCacheBytes()).isEqualTo(2L * 2 * 5 * 4 * 8 * 8 * 4);
    assertThat(loaded.getVocabStart()).isZero();
    assertThat(loaded.getVocabEnd()).isEqualTo(512);
    // stories260K: 260,032 float32 parameters, plus the lm_head.weight the HF conversion stores as
    // a copy of the tied embeddings (the slice reads that copy)
    assertThat(loaded.getWeightBytes()).isEqualTo((260_032L + 512 * 64) * 4);
  }

  @Test
  void aLoadSliceOfAnOlderPlacementEpochIsRefusedAndLeavesTheSliceServing() {
    call().loadSlice(load(1).setPlacementEpoch(5).setPlacementId("leader-b").build());

    assertStatus(() -> call().loadSlice(load(1).setPlacementEpoch(4).setPlacementId("leader-a").build()),
        Status.Code.FAILED_PRECONDITION, "LoadSlice of placement epoch 4 refused: this shard was placed by epoch 5");
    assertThat(call().runStep(step(1, text(1, 0, 1))).getLogits().getShapeList()).containsExactly(1L, 512L);
    call().loadSlice(load(1).setPlacementEpoch(5).setPlacementId("leader-b").build());
    call().loadSlice(load(1).setPlacementEpoch(6).setPlacementId("leader-c").build());
    assertStatus(() -> call().loadSlice(load(1).setPlacementEpoch(5).setPlacementId("leader-b").build()),
        Status.Code.FAILED_PRECONDITION, "placed by epoch 6");
  }

  @Test
  void runStepRefusesStepsThatDoNotFitTheSliceOrItsSequences() {
    call().loadSlice(load(1).build());
    assertThat(call().runStep(step(1, text(1, 0, 1, 365, 356))).getLogits().getShapeList()).containsExactly(1L, 512L);

    assertStatus(() -> call().runStep(step(2, text(1, 3, 297)).toBuilder().setGroupId("other").build()),
        Status.Code.FAILED_PRECONDITION, "group 'solo' (world size 1). Given: group 'other', world size 1");
    assertStatus(() -> call().runStep(step(1, text(1, 3, 297))), Status.Code.INVALID_ARGUMENT,
        "step_id must be greater than the last step run on this rank (1). Given: 1");
    assertStatus(() -> call().runStep(step(2, text(1, 5, 297))), Status.Code.INVALID_ARGUMENT,
        "positions must continue its KV cache from 3, one per row. Given: positions[0] = 5");
    assertStatus(() -> call().runStep(step(2, text(2, 4, 297))), Status.Code.INVALID_ARGUMENT,
        "sequence 2) is unknown on this rank");
    assertStatus(() -> call().runStep(step(2, text(1, 3, 512))), Status.Code.INVALID_ARGUMENT,
        "token_ids[0] must be in [0, 512). Given: 512");
    assertStatus(() -> call().runStep(step(2, text(1, 3, 1, 2, 3, 4, 5), text(2, 0, 1, 2, 3, 4))),
        Status.Code.RESOURCE_EXHAUSTED, "max_num_tokens (8) rows. Given: 9");
    assertStatus(() -> call().runStep(step(2, text(1, 3, 297).addModalities(Modality.MODALITY_IMAGE))),
        Status.Code.INVALID_ARGUMENT, "one entry per row. Given: 1, 1, 2");
    assertStatus(() -> call().runStep(step(2, text(2, 0, 1).setModalities(0, Modality.MODALITY_IMAGE))),
        Status.Code.INVALID_ARGUMENT, "image_embeddings must be F32 [1, 64]");

    // refused steps left the sequence where it was
    assertThat(call().runStep(step(2, text(1, 3, 297))).getStepId()).isEqualTo(2);
    assertThat(call().releaseSequences(ReleaseSequencesRequest.newBuilder().addSequenceIds(1).addSequenceIds(9)
        .build()).getNumReleased()).isEqualTo(1);
    assertStatus(() -> call().runStep(step(3, text(1, 4, 297))), Status.Code.INVALID_ARGUMENT,
        "sequence 1) is unknown on this rank");
  }

  @Test
  void aLoadSliceEqualToTheLoadedOneFormsTheGroupAnewWithoutTheSequencesHeldBefore() {
    call().loadSlice(load(1).build());
    call().runStep(step(1, text(1, 0, 1, 365, 356)));

    // the coordinator re-forms the group after it was DOWN (this shard stayed up) and re-admits
    // sequence 1 from its start
    call().loadSlice(load(1).build());

    assertStatus(() -> call().runStep(step(2, text(1, 3, 297))), Status.Code.INVALID_ARGUMENT,
        "sequence 1) is unknown on this rank");
    assertThat(call().runStep(step(3, text(1, 0, 1, 365, 356))).getLogits().getShapeList()).containsExactly(1L, 512L);
  }
}
