package dev.owlery.coordinator.testing;

import com.google.protobuf.ByteString;
import dev.owlery.engine.sampling.TopCandidates;
import dev.owlery.proto.internal.v1.DType;
import dev.owlery.proto.internal.v1.LogitCandidates;
import dev.owlery.proto.internal.v1.RunStepRequest;
import dev.owlery.proto.internal.v1.RunStepResponse;
import dev.owlery.proto.internal.v1.StepSequence;
import dev.owlery.proto.internal.v1.Tensor;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

/**
 * A fake rank's answer to a step built as the real shard builds it (shard-worker's {@code
 * StepLogits}): each sequence's last row of the rank's vocabulary slice, or its top candidates and
 * the slice's log-sum-exp when the sequence asks for {@code num_candidates}.
 */
final class StepAnswers {

  private StepAnswers() {}

  /** The answer to {@code step} whose sequence i has {@code lastRows.get(i)} as its slice [vocabStart, vocabEnd). */
  static RunStepResponse answer(RunStepRequest step, List<float[]> lastRows, int vocabStart, int vocabEnd) {
    int width = vocabEnd - vocabStart;
    ByteBuffer rows = ByteBuffer.allocate(step.getSequencesCount() * width * Float.BYTES).order(ByteOrder.LITTLE_ENDIAN);
    List<Integer> counts = new ArrayList<>();
    List<Integer> ids = new ArrayList<>();
    List<Float> values = new ArrayList<>();
    List<Float> logSumExps = new ArrayList<>();
    int numRows = 0;
    for (int i = 0; i < step.getSequencesCount(); i++) {
      StepSequence sequence = step.getSequences(i);
      float[] row = lastRows.get(i);
      if (sequence.getNumCandidates() > 0) {
        int[] indexes = new int[width];
        int count = TopCandidates.select(row, 0, width, sequence.getNumCandidates(), sequence.getCandidateTemperature(),
            indexes, new float[sequence.getNumCandidates()]);
        counts.add(count);
        for (int j = 0; j < count; j++) {
          ids.add(vocabStart + indexes[j]);
          values.add(row[indexes[j]]);
        }
        logSumExps.add((float) TopCandidates.logSumExp(row, 0, width));
      } else {
        rows.asFloatBuffer().put(numRows++ * width, row, 0, width);
      }
    }
    RunStepResponse.Builder answer = RunStepResponse.newBuilder().setStepId(step.getStepId()).setVocabStart(vocabStart)
        .setVocabEnd(vocabEnd).setLogits(Tensor.newBuilder().setDtype(DType.DTYPE_F32).addShape(numRows).addShape(width)
            .setData(ByteString.copyFrom(rows.array(), 0, numRows * width * Float.BYTES)));
    if (!counts.isEmpty()) {
      answer.setCandidates(LogitCandidates.newBuilder().setCounts(ints(counts)).setTokenIds(ints(ids))
          .setLogits(floats(values)).setLogSumExps(floats(logSumExps)));
    }
    return answer.build();
  }

  private static Tensor ints(List<Integer> values) {
    ByteBuffer data = ByteBuffer.allocate(values.size() * Integer.BYTES).order(ByteOrder.LITTLE_ENDIAN);
    values.forEach(data::putInt);
    return Tensor.newBuilder().setDtype(DType.DTYPE_I32).addShape(values.size()).setData(ByteString.copyFrom(data.array()))
        .build();
  }

  private static Tensor floats(List<Float> values) {
    ByteBuffer data = ByteBuffer.allocate(values.size() * Float.BYTES).order(ByteOrder.LITTLE_ENDIAN);
    values.forEach(data::putFloat);
    return Tensor.newBuilder().setDtype(DType.DTYPE_F32).addShape(values.size()).setData(ByteString.copyFrom(data.array()))
        .build();
  }
}
