package dev.owlery.shard.worker;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import dev.owlery.cluster.testing.GrpcCleanup;
import dev.owlery.engine.kernel.ScalarKernels;
import dev.owlery.engine.sampling.TopCandidates;
import dev.owlery.engine.testing.Fixtures;
import dev.owlery.proto.internal.v1.DType;
import dev.owlery.proto.internal.v1.LogitCandidates;
import dev.owlery.proto.internal.v1.Modality;
import dev.owlery.proto.internal.v1.RunStepRequest;
import dev.owlery.proto.internal.v1.RunStepResponse;
import dev.owlery.proto.internal.v1.StepSequence;
import io.grpc.Status;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Sequences with num_candidates get their last row's top candidates and the slice's log-sum-exp
 * instead of the row, on 2 real ranks of tiny-owl2 (32,000 tokens, 16,000 per rank; scalar kernels,
 * so a row is bit-identical in any batch): the candidates are the top of the row the same prompt
 * gets as logits, and the answer is a small fraction of the bytes.
 */
class StepCandidatesTest {

  private static final int[] PROMPT = {1, 450, 4996, 17354, 1701, 29916};
  private static final int K = 20;
  private static final int NUM_SEQUENCES = 4;

  @RegisterExtension final GrpcCleanup cleanup = new GrpcCleanup();

  private ShardGroup loadedGroup(String name) {
    ShardGroup group = ShardGroup.start(2, ShardWorkerConfig.defaults(), new ScalarKernels(), cleanup);
    group.load(Fixtures.tinyOwl2(), name, 64, 2 * NUM_SEQUENCES);
    return group;
  }

  private static StepSequence.Builder prompt(long sequenceId, int firstBlock) {
    StepSequence.Builder s = StepSequence.newBuilder().setSequenceId(sequenceId);
    for (int k = 0; k < PROMPT.length; k++) {
      s.addTokenIds(PROMPT[k]).addPositions(k).addModalities(Modality.MODALITY_TEXT);
    }
    return ShardGroup.withBlocks(s, firstBlock);
  }

  private static RunStepRequest.Builder step(long stepId, int firstSequence, int numCandidates) {
    RunStepRequest.Builder step = RunStepRequest.newBuilder().setStepId(stepId);
    for (int i = firstSequence; i < firstSequence + NUM_SEQUENCES; i++) {
      step.addSequences(prompt(i, i).setNumCandidates(numCandidates).setCandidateTemperature(1f));
    }
    return step;
  }

  @Test
  void candidatesAreTheTopOfTheRowAndCrossInAFractionOfItsBytes() {
    ShardGroup group = loadedGroup("candidates");
    List<RunStepResponse> rows = group.step(step(1, 0, 0));
    List<RunStepResponse> candidates = group.step(step(2, NUM_SEQUENCES, K));
    for (int r = 0; r < 2; r++) {
      RunStepResponse full = rows.get(r);
      RunStepResponse top = candidates.get(r);
      int start = full.getVocabStart();
      int width = full.getVocabEnd() - start;
      assertThat(width).isEqualTo(16_000);
      assertThat(top.getLogits().getShapeList()).containsExactly(0L, (long) width);
      LogitCandidates c = top.getCandidates();
      assertThat(c.getCounts().getDtype()).isEqualTo(DType.DTYPE_I32);
      IntBuffer counts = ints(c.getCounts().getData().asReadOnlyByteBuffer());
      IntBuffer ids = ints(c.getTokenIds().getData().asReadOnlyByteBuffer());
      FloatBuffer values = floats(c.getLogits().getData().asReadOnlyByteBuffer());
      FloatBuffer lses = floats(c.getLogSumExps().getData().asReadOnlyByteBuffer());
      float[] slice = new float[width * NUM_SEQUENCES];
      floats(full.getLogits().getData().asReadOnlyByteBuffer()).get(slice);
      int at = 0;
      for (int i = 0; i < NUM_SEQUENCES; i++) {
        int[] expected = new int[width];
        int n = TopCandidates.select(slice, i * width, width, K, 1f, expected, new float[K]);
        assertThat(counts.get(i)).isEqualTo(n).isGreaterThanOrEqualTo(K);
        for (int j = 0; j < n; j++, at++) {
          assertThat(ids.get(at)).isEqualTo(start + expected[j]);
          assertThat(values.get(at)).isEqualTo(slice[i * width + expected[j]]);
        }
        // the top K of the slice by value: nothing left out is larger than the smallest sent
        float[] sorted = Arrays.copyOfRange(slice, i * width, (i + 1) * width);
        Arrays.sort(sorted);
        assertThat(values.get(at - n)).isGreaterThanOrEqualTo(sorted[width - K]);
        assertThat((double) lses.get(i)).isCloseTo(TopCandidates.logSumExp(slice, i * width, width), within(1e-5));
      }
      // 4 rows of 16,000 float32 logits against 4 x 20 (id, logit) pairs and 4 log-sum-exps
      assertThat(top.getSerializedSize()).isLessThan(full.getSerializedSize() / 100);
    }
  }

  @Test
  void candidatesWithAllLogitsAreRefusedByEveryRank() {
    ShardGroup group = loadedGroup("refused");
    RunStepRequest.Builder step = RunStepRequest.newBuilder().setStepId(1)
        .addSequences(prompt(1, 0).setNumCandidates(K).setCandidateTemperature(1f).setAllLogits(true));
    assertThat(group.stepStatuses(step)).extracting(Status::getCode)
        .containsExactly(Status.Code.INVALID_ARGUMENT, Status.Code.INVALID_ARGUMENT);
    RunStepRequest.Builder noTemperature = RunStepRequest.newBuilder().setStepId(2)
        .addSequences(prompt(2, 0).setNumCandidates(K));
    assertThat(group.stepStatuses(noTemperature)).extracting(Status::getCode)
        .containsExactly(Status.Code.INVALID_ARGUMENT, Status.Code.INVALID_ARGUMENT);
  }

  private static IntBuffer ints(java.nio.ByteBuffer bytes) {
    return bytes.order(ByteOrder.LITTLE_ENDIAN).asIntBuffer();
  }

  private static FloatBuffer floats(java.nio.ByteBuffer bytes) {
    return bytes.order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
  }
}
