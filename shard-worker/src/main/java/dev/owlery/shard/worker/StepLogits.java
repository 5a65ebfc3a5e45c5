package dev.owlery.shard.worker;

import com.google.protobuf.ByteString;
import com.google.protobuf.UnsafeByteOperations;
import dev.owlery.engine.sampling.TopCandidates;
import dev.owlery.proto.internal.v1.DType;
import dev.owlery.proto.internal.v1.LogitCandidates;
import dev.owlery.proto.internal.v1.RunStepRequest;
import dev.owlery.proto.internal.v1.RunStepResponse;
import dev.owlery.proto.internal.v1.StepSequence;
import dev.owlery.proto.internal.v1.Tensor;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * What a step returns of its logits: the rows of this rank's vocabulary slice for the sequences
 * that want them, and for those with {@code num_candidates} their last row's candidates ({@link
 * TopCandidates}) instead, which is what keeps a 256-sequence step from sending 256 slices of the
 * vocabulary. Wire buffers are reused by the next step: the response is sent (gRPC copies in
 * onNext) by the step thread before the next step runs. Used by the shard's step thread only.
 */
final class StepLogits {

  private final int vocabStart;
  private final int localVocab;
  private final int[] indexes;
  private float[] heap = new float[0];
  private ByteBuffer rows = ByteBuffer.allocate(0);
  private ByteBuffer counts = ByteBuffer.allocate(0);
  private ByteBuffer tokenIds = ByteBuffer.allocate(0);
  private ByteBuffer candidateLogits = ByteBuffer.allocate(0);
  private ByteBuffer logSumExps = ByteBuffer.allocate(0);

  StepLogits(int vocabStart, int localVocab) {
    this.vocabStart = vocabStart;
    this.localVocab = localVocab;
    this.indexes = new int[localVocab];
  }

  /** Checks every sequence's num_candidates and candidate_temperature before any row runs. */
  static void check(RunStepRequest step) {
    for (int i = 0; i < step.getSequencesCount(); i++) {
      StepSequence s = step.getSequences(i);
      String where = "sequences[%d] (sequence %d)".formatted(i, s.getSequenceId());
      if (s.getNumCandidates() < 0) {
        throw new IllegalArgumentException(where + ": num_candidates must be >= 0 (0: the logit rows). Given: "
            + s.getNumCandidates());
      }
      if (s.getNumCandidates() > 0 && s.getAllLogits()) {
        throw new IllegalArgumentException(where + ": num_candidates (" + s.getNumCandidates()
            + ") returns the last row's candidates and cannot be combined with all_logits");
      }
      float temperature = s.getCandidateTemperature();
      if (s.getNumCandidates() > 0 && !(temperature > 0 && Float.isFinite(temperature))) {
        throw new IllegalArgumentException(where + ": candidate_temperature must be a finite value > 0 with num_candidates. Given: "
            + temperature);
      }
    }
  }

  /**
   * Puts into {@code response} the logits of {@code plan}'s sequences from {@code logits} (the
   * forward's rows, [plan.numLogitRows(), localVocab]): rows for those without num_candidates,
   * candidates for the others.
   */
  void write(StepPlan plan, float[] logits, RunStepResponse.Builder response) {
    int numRows = 0;
    int numCandidateRows = 0;
    int maxK = 0;
    for (StepPlan.SequenceRows sequence : plan.sequences()) {
      StepSequence s = sequence.sequence();
      if (s.getNumCandidates() > 0) {
        numCandidateRows++;
        maxK = Math.max(maxK, s.getNumCandidates());
      } else {
        numRows += s.getAllLogits() ? sequence.numRows() : 1;
      }
    }
    rows = room(rows, (long) numRows * localVocab * Float.BYTES);
    counts = room(counts, (long) numCandidateRows * Integer.BYTES);
    logSumExps = room(logSumExps, (long) numCandidateRows * Float.BYTES);
    if (heap.length < maxK) {
      heap = new float[maxK];
    }
    int row = 0;
    int numCandidates = 0;
    for (StepPlan.SequenceRows sequence : plan.sequences()) {
      StepSequence s = sequence.sequence();
      int offset = row * localVocab;
      if (s.getNumCandidates() > 0) {
        int count = TopCandidates.select(logits, offset, localVocab, s.getNumCandidates(),
            s.getCandidateTemperature(), indexes, heap);
        tokenIds = grow(tokenIds, (long) (numCandidates + count) * Integer.BYTES);
        candidateLogits = grow(candidateLogits, (long) (numCandidates + count) * Float.BYTES);
        for (int i = 0; i < count; i++, numCandidates++) {
          tokenIds.putInt(numCandidates * Integer.BYTES, vocabStart + indexes[i]);
          candidateLogits.putFloat(numCandidates * Float.BYTES, logits[offset + indexes[i]]);
        }
        counts.putInt(counts.position(), count).position(counts.position() + Integer.BYTES);
        logSumExps.putFloat(logSumExps.position(), (float) TopCandidates.logSumExp(logits, offset, localVocab))
            .position(logSumExps.position() + Float.BYTES);
        row++;
      } else {
        int n = s.getAllLogits() ? sequence.numRows() : 1;
        rows.asFloatBuffer().put(0, logits, offset, n * localVocab); // a view from rows' position
        rows.position(rows.position() + n * localVocab * Float.BYTES);
        row += n;
      }
    }
    response.setLogits(tensor(DType.DTYPE_F32, rows, numRows, localVocab));
    if (numCandidateRows > 0) {
      response.setCandidates(LogitCandidates.newBuilder()
          .setCounts(tensor(DType.DTYPE_I32, counts, numCandidateRows))
          .setTokenIds(tensor(DType.DTYPE_I32, tokenIds.position(numCandidates * Integer.BYTES), numCandidates))
          .setLogits(tensor(DType.DTYPE_F32, candidateLogits.position(numCandidates * Float.BYTES), numCandidates))
          .setLogSumExps(tensor(DType.DTYPE_F32, logSumExps, numCandidateRows)));
    }
  }

  /** A little-endian heap buffer of at least {@code bytes}, positioned at 0. */
  private static ByteBuffer room(ByteBuffer buffer, long bytes) {
    ByteBuffer out = buffer.capacity() >= bytes ? buffer
        : ByteBuffer.allocate(Math.toIntExact(bytes)).order(ByteOrder.LITTLE_ENDIAN);
    return out.order(ByteOrder.LITTLE_ENDIAN).clear();
  }

  /** {@code buffer}, or a larger copy of its contents when it has less than {@code bytes}. */
  private static ByteBuffer grow(ByteBuffer buffer, long bytes) {
    if (buffer.capacity() >= bytes) {
      return buffer.order(ByteOrder.LITTLE_ENDIAN);
    }
    ByteBuffer out = ByteBuffer.allocate(Math.toIntExact(Math.max(bytes, 2L * buffer.capacity())))
        .order(ByteOrder.LITTLE_ENDIAN);
    out.put(0, buffer, 0, buffer.capacity());
    return out;
  }

  /** The first {@code position()} bytes of {@code buffer}, wrapped, as a tensor of {@code shape}. */
  private static Tensor tensor(DType dtype, ByteBuffer buffer, long... shape) {
    ByteString data = UnsafeByteOperations.unsafeWrap(buffer.array(), 0, buffer.position());
    Tensor.Builder tensor = Tensor.newBuilder().setDtype(dtype).setData(data);
    for (long size : shape) {
      tensor.addShape(size);
    }
    return tensor.build();
  }
}
