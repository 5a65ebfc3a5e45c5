package dev.owlery.shard.worker;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.common.util.concurrent.ListenableFuture;
import com.google.protobuf.ByteString;
import dev.owlery.cluster.testing.GrpcCleanup;
import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.checkpoint.SafetensorsCheckpoint;
import dev.owlery.engine.config.LlamaConfig;
import dev.owlery.engine.config.ModelConfig;
import dev.owlery.engine.cuda.plan.DeviceMemoryPlan;
import dev.owlery.engine.cuda.plan.SliceFootprint;
import dev.owlery.engine.decoder.TensorParallelRank;
import dev.owlery.engine.kernel.ScalarKernels;
import dev.owlery.engine.sampling.Sampler;
import dev.owlery.engine.tensor.DType;
import dev.owlery.engine.testing.Fixtures;
import dev.owlery.proto.internal.v1.KvCacheDtype;
import dev.owlery.proto.internal.v1.Modality;
import dev.owlery.proto.internal.v1.RunStepRequest;
import dev.owlery.proto.internal.v1.StepSequence;
import dev.owlery.proto.internal.v1.Tensor;
import io.grpc.Status;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Shard workers serving from a device: on {@code --device cuda-twin} (the CUDA code path, each
 * kernel launch run by its Java twin) a shard answers RunStep as the CPU shard does with an F16
 * KV cache, bit for bit (the twins compute with the CPU's scalar kernels in the CPU's order and
 * round where the CPU's F16 cache rounds; design notes), at tensor-parallel size 1 and 2; and the
 * device's memory plan bounds the KV pool LoadSlice may ask for.
 */
class DeviceShardWorkerTest {

  private static final int IMAGE_TOKEN_INDEX = -200;
  private static final int VISUAL_ROWS = 9;
  private static final int HIDDEN = 64;
  private static final int VOCAB = 32000;
  private static final int NUM_POSITIONS = 24;
  private static final int DECODE_STEPS = 4;
  /** A twin device of 1 GiB of which the shard takes half: room for tiny-owl2 and far more than 64 blocks. */
  private static final ShardDevice TWIN = ShardDevice.twin(1L << 30, 0.5);

  @RegisterExtension final GrpcCleanup cleanup = new GrpcCleanup();

  private static Path dir;
  private static Checkpoint reference;

  @BeforeAll
  static void open() {
    dir = Fixtures.tinyOwl2();
    reference = SafetensorsCheckpoint.openFile(dir.resolve("reference.safetensors"));
  }

  @AfterAll
  static void close() {
    if (reference != null) {
      reference.close();
    }
  }

  @Test
  void onTheTwinDeviceEveryStepEqualsTheCpuShardWithAnF16CacheBitForBit() {
    ShardGroup cpu = ShardGroup.start(1, ShardWorkerConfig.defaults(), new ScalarKernels(), cleanup);
    ShardGroup twin = ShardGroup.start(1, ShardWorkerConfig.defaults().withDevice(TWIN), new ScalarKernels(), cleanup);

    Steps onCpu = run(cpu);
    Steps onTwin = run(twin);

    assertBitForBit(onTwin, onCpu);
    long[] official = reference.tensor("generate.tokens").toLongArray();
    for (int i = 0; i < DECODE_STEPS; i++) {
      assertThat(onTwin.tokens().get(i)).as("greedy token %d", i).isEqualTo((int) official[i]);
    }
  }

  @Test
  void twoRanksOnTwoTwinDevicesEqualTheCpuGroupBitForBit() {
    ShardGroup cpu = ShardGroup.start(2, ShardWorkerConfig.defaults(), new ScalarKernels(), cleanup);
    ShardGroup twins = ShardGroup.start(2, ShardWorkerConfig.defaults().withDevice(TWIN), new ScalarKernels(), cleanup);

    Steps onCpu = run(cpu);
    Steps onTwins = run(twins);

    assertBitForBit(onTwins, onCpu);
    assertThat(onTwins.tokens()).isEqualTo(onCpu.tokens());
  }

  @Test
  void aPoolLargerThanTheDevicePlanAllowsIsRefusedNamingThePlan() throws Exception {
    LlamaConfig text = ModelConfig.load(dir).text();
    SliceFootprint footprint = SliceFootprint.of(text, new TensorParallelRank(0, 1), DType.F32,
        dev.owlery.engine.kv.KvCacheDtype.F16, 64);
    // a device whose whole memory holds the slice and 10 blocks of 16 positions
    long total = footprint.weightBytes() + footprint.workspaceBytes() + 10 * 16 * footprint.kvBytesPerPosition();
    ShardDevice small = ShardDevice.twin(total, 1.0);
    DeviceMemoryPlan plan = DeviceMemoryPlan.of(small.memory(), 1.0, footprint, ShardGroup.BLOCK_SIZE);
    assertThat(plan.numKvBlocks()).isEqualTo(10);
    ShardGroup group = ShardGroup.start(1, ShardWorkerConfig.defaults().withDevice(small), new ScalarKernels(), cleanup);

    var call = group.loadCalls(dir, "small", 64, 1, KvCacheDtype.KV_CACHE_DTYPE_F16).getFirst();

    Status status = statusOf(call);
    assertThat(status.getCode()).isEqualTo(Status.Code.RESOURCE_EXHAUSTED);
    assertThat(status.getDescription()).isEqualTo("num_kv_blocks %d is more than this shard's device plan allows: %s"
        .formatted(ShardGroup.NUM_KV_BLOCKS, plan.describe()));
  }

  @Test
  void aFloat32KvCacheIsRefusedOnADevice() throws Exception {
    ShardGroup group = ShardGroup.start(1, ShardWorkerConfig.defaults().withDevice(TWIN), new ScalarKernels(), cleanup);

    Status status = statusOf(group.loadCalls(dir, "f32", 64, 1, KvCacheDtype.KV_CACHE_DTYPE_F32).getFirst());

    assertThat(status.getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
    assertThat(status.getDescription()).isEqualTo("kv_cache_dtype must be KV_CACHE_DTYPE_F16 on cuda-twin (the device "
        + "kernels store the KV cache in F16). Given: KV_CACHE_DTYPE_F32");
  }

  /** The gathered logits of every step and the greedy tokens sequence 1 was fed. */
  private record Steps(List<float[]> logits, List<Integer> tokens) {}

  /**
   * tiny-owl2's prompt with its 9 image rows (sequence 1, every row's logits), then {@value
   * #DECODE_STEPS} greedy decode steps of it; the first also carries a second sequence's 7-row
   * text prompt (a batched step of a decode row and a prefill chunk), which then decodes alongside.
   */
  private static Steps run(ShardGroup group) {
    ShardGroup.answers(group.loadCalls(dir, "owl", 64, 2, KvCacheDtype.KV_CACHE_DTYPE_F16));
    List<float[]> logits = new ArrayList<>();
    List<Integer> tokens = new ArrayList<>();
    float[] prompt = ShardGroup.gatherLogits(group.step(RunStepRequest.newBuilder().setStepId(1)
        .addSequences(promptWithImageRows())), VOCAB);
    logits.add(prompt);
    int next = Sampler.argmax(prompt, (NUM_POSITIONS - 1) * VOCAB, VOCAB);
    int other = 450;
    for (int i = 0; i < DECODE_STEPS; i++) {
      tokens.add(next);
      RunStepRequest.Builder step = RunStepRequest.newBuilder().setStepId(2 + i)
          .addSequences(decodeRow(1, next, NUM_POSITIONS + i, 5));
      if (i == 0) {
        StepSequence.Builder second = StepSequence.newBuilder().setSequenceId(2);
        for (int p = 0; p < 7; p++) {
          second.addTokenIds(1 + 37 * p).addPositions(p).addModalities(Modality.MODALITY_TEXT);
        }
        step.addSequences(ShardGroup.withBlocks(second, 20));
      } else {
        step.addSequences(decodeRow(2, other, 6 + i, 20));
      }
      float[] answer = ShardGroup.gatherLogits(group.step(step), VOCAB);
      logits.add(answer);
      next = Sampler.argmax(answer, 0, VOCAB);
      other = Sampler.argmax(answer, VOCAB, VOCAB);
    }
    return new Steps(logits, tokens);
  }

  /** Every step's logits equal, bit for bit (float bits, as Arrays.equals compares them). */
  private static void assertBitForBit(Steps actual, Steps expected) {
    assertThat(actual.logits()).hasSameSizeAs(expected.logits());
    for (int step = 0; step < expected.logits().size(); step++) {
      float[] a = actual.logits().get(step);
      float[] b = expected.logits().get(step);
      double maxDiff = 0;
      for (int i = 0; i < Math.min(a.length, b.length); i++) {
        maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));
      }
      assertThat(Arrays.equals(a, b)).as("step %d: %d and %d logits, max |diff| %s", step + 1, a.length, b.length,
          maxDiff).isTrue();
    }
  }

  private static StepSequence decodeRow(long sequenceId, int token, int position, int firstBlock) {
    return ShardGroup.withBlocks(StepSequence.newBuilder().setSequenceId(sequenceId).addTokenIds(token)
        .addPositions(position).addModalities(Modality.MODALITY_TEXT), firstBlock).build();
  }

  /** The prompt as the coordinator sends it: text ids, and 9 IMAGE rows where the placeholder was. */
  private static StepSequence promptWithImageRows() {
    long[] inputIds = reference.tensor("input_ids", 1, 16).toLongArray();
    float[] visual = reference.tensor("visual_embeds", 1, VISUAL_ROWS, HIDDEN).toFloatArray();
    ByteBuffer bytes = ByteBuffer.allocate(visual.length * 4).order(ByteOrder.LITTLE_ENDIAN);
    bytes.asFloatBuffer().put(visual);
    StepSequence.Builder s = StepSequence.newBuilder().setSequenceId(1).setAllLogits(true)
        .setImageEmbeddings(Tensor.newBuilder().setDtype(dev.owlery.proto.internal.v1.DType.DTYPE_F32)
            .addShape(VISUAL_ROWS).addShape(HIDDEN).setData(ByteString.copyFrom(bytes.array())));
    int position = 0;
    for (long id : inputIds) {
      if (id == IMAGE_TOKEN_INDEX) {
        for (int v = 0; v < VISUAL_ROWS; v++) {
          s.addTokenIds(0).addPositions(position++).addModalities(Modality.MODALITY_IMAGE);
        }
      } else {
        s.addTokenIds((int) id).addPositions(position++).addModalities(Modality.MODALITY_TEXT);
      }
    }
    return ShardGroup.withBlocks(s, 5).build();
  }

  private static Status statusOf(ListenableFuture<?> call) throws Exception {
    try {
      call.get(ShardGroup.DEADLINE.toMillis(), TimeUnit.MILLISECONDS);
      throw new AssertionError("the call succeeded");
    } catch (ExecutionException e) {
      return Status.fromThrowable(e.getCause());
    }
  }
}
