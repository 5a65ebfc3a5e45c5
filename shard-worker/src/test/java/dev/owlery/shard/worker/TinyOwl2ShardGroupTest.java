package dev.owlery.shard.worker;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.ByteString;
import dev.owlery.cluster.testing.GrpcCleanup;
import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.checkpoint.SafetensorsCheckpoint;
import dev.owlery.engine.kernel.VectorKernels;
import dev.owlery.engine.sampling.Sampler;
import dev.owlery.engine.testing.Fixtures;
import dev.owlery.proto.internal.v1.DType;
import dev.owlery.proto.internal.v1.Modality;
import dev.owlery.proto.internal.v1.RunStepRequest;
import dev.owlery.proto.internal.v1.RunStepResponse;
import dev.owlery.proto.internal.v1.StepSequence;
import dev.owlery.proto.internal.v1.Tensor;
import dev.owlery.shard.collective.GrpcCollective;
import dev.owlery.shard.collective.StepTraffic;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * tiny-owl2 on two shard workers: a prompt with image rows (the official visual embeddings spliced
 * at the -200 placeholder, routed through the visual MAM weights) reproduces the official logits,
 * and the bytes every rank exchanges per step are counted exactly.
 */
class TinyOwl2ShardGroupTest {

  /** Fixture README: logits 1e-3 (|logits| <= 25; a numpy fp32 re-implementation agrees to 1.6e-5). */
  private static final double LOGITS_TOLERANCE = 1e-3;
  private static final int IMAGE_TOKEN_INDEX = -200;
  private static final int VISUAL_ROWS = 9;
  private static final int HIDDEN = 64;
  private static final int VOCAB = 32000;
  private static final int NUM_POSITIONS = 24;

  @RegisterExtension final GrpcCleanup cleanup = new GrpcCleanup();

  private static Path dir;
  private static Checkpoint reference;
  private static VectorKernels kernels;

  @BeforeAll
  static void open() {
    dir = Fixtures.tinyOwl2();
    reference = SafetensorsCheckpoint.openFile(dir.resolve("reference.safetensors"));
    kernels = new VectorKernels(1);
  }

  @AfterAll
  static void close() {
    if (reference != null) {
      reference.close();
      kernels.close();
    }
  }

  /** The prompt as the coordinator sends it: text ids, and 9 IMAGE rows where the placeholder was. */
  private static StepSequence promptWithImageRows() {
    long[] inputIds = reference.tensor("input_ids", 1, 16).toLongArray();
    float[] visual = reference.tensor("visual_embeds", 1, VISUAL_ROWS, HIDDEN).toFloatArray();
    ByteBuffer bytes = ByteBuffer.allocate(visual.length * 4).order(ByteOrder.LITTLE_ENDIAN);
    bytes.asFloatBuffer().put(visual);
    StepSequence.Builder s = StepSequence.newBuilder().setSequenceId(1).setAllLogits(true)
        .setImageEmbeddings(Tensor.newBuilder().setDtype(DType.DTYPE_F32).addShape(VISUAL_ROWS).addShape(HIDDEN)
            .setData(ByteString.copyFrom(bytes.array())));
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
    assertThat(position).isEqualTo(NUM_POSITIONS);
    return ShardGroup.withBlocks(s, 0).build();
  }

  private static double maxAbsDiff(float[] a, int aOffset, float[] b, int bOffset, int n) {
    double max = 0;
    for (int i = 0; i < n; i++) {
      max = Math.max(max, Math.abs(a[aOffset + i] - b[bOffset + i]));
    }
    return max;
  }

  @Test
  void imageRowsReproduceTheOfficialLogitsAndEveryStepsBytesAreCounted() {
    ShardGroup group = ShardGroup.start(2, ShardWorkerConfig.defaults(), kernels, cleanup);
    group.load(dir, "owl", 64, 1);

    List<RunStepResponse> prefill = group.step(RunStepRequest.newBuilder().setStepId(1)
        .addSequences(promptWithImageRows()));
    float[] logits = ShardGroup.gatherLogits(prefill, VOCAB);
    float[] expected = reference.tensor("logits", 1, NUM_POSITIONS, VOCAB).toFloatArray();
    assertThat(maxAbsDiff(logits, 0, expected, 0, expected.length)).isLessThan(LOGITS_TOLERANCE);
    List<StepTraffic> prefillTraffic = group.servers.stream().map(ShardWorkerServer::lastStep).toList();

    long[] tokens = reference.tensor("generate.tokens").toLongArray();
    float[] stepLogits = reference.tensor("generate.step_logits").toFloatArray();
    assertThat(Sampler.argmax(logits, (NUM_POSITIONS - 1) * VOCAB, VOCAB)).isEqualTo((int) tokens[0]);
    List<RunStepResponse> decode = group.step(RunStepRequest.newBuilder().setStepId(2)
        .addSequences(ShardGroup.withBlocks(StepSequence.newBuilder().setSequenceId(1).addTokenIds((int) tokens[0])
            .addPositions(NUM_POSITIONS).addModalities(Modality.MODALITY_TEXT), 0)));
    float[] next = ShardGroup.gatherLogits(decode, VOCAB);
    assertThat(maxAbsDiff(next, 0, stepLogits, VOCAB, VOCAB)).isLessThan(LOGITS_TOLERANCE);
    assertThat(Sampler.argmax(next, 0, VOCAB)).isEqualTo((int) tokens[1]);

    // Megatron's two all-reduces per layer, 2 layers, of [rows, 64] F32, to the one peer:
    // payload = 2 * 2 * rows * 64 * 4 bytes each way. Each message adds 86 bytes over the 4
    // all-reduces of a step (step_id 1 byte): ExchangeContributions tag + length (3), step_id (2),
    // phase (2), partial tag + length (3), Tensor dtype (2), shape [rows, 64] (4), data tag +
    // length (3) = 19 per message, plus ordinal (2) when != 0 and layer (2) when != 0:
    // 19 + 21 + 23 + 23 = 86.
    for (int rank = 0; rank < 2; rank++) {
      StepTraffic decodeTraffic = group.servers.get(rank).lastStep();
      assertThat(decodeTraffic).as("rank %d decode step", rank)
          .isEqualTo(new StepTraffic(2, 4, 1024, 1024, 1110, 1110, decodeTraffic.allReduceNanos()));
      StepTraffic prompt = prefillTraffic.get(rank);
      assertThat(prompt).as("rank %d prompt step", rank)
          .isEqualTo(new StepTraffic(1, 4, 24576, 24576, 24662, 24662, prompt.allReduceNanos()));
      assertThat(decode.get(rank).getTimings().getAllReduceNs()).isEqualTo(decodeTraffic.allReduceNanos());
      assertThat(group.meters.get(rank).get(GrpcCollective.BYTES).tag("direction", "sent").counter().count())
          .isEqualTo(24662 + 1110);
      assertThat(group.meters.get(rank).get(GrpcCollective.BYTES).tag("direction", "received").counter().count())
          .isEqualTo(24662 + 1110);
    }
  }
}
