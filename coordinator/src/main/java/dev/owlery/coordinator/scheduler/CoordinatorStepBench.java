package dev.owlery.coordinator.scheduler;

import com.google.protobuf.ByteString;
import com.google.protobuf.InvalidProtocolBufferException;
import dev.owlery.coordinator.model.ServedModel;
import dev.owlery.engine.sampling.SamplingParams;
import dev.owlery.engine.sampling.TopCandidates;
import dev.owlery.proto.internal.v1.DType;
import dev.owlery.proto.internal.v1.LogitCandidates;
import dev.owlery.proto.internal.v1.RunStepResponse;
import dev.owlery.proto.internal.v1.StepSequence;
import dev.owlery.proto.internal.v1.Tensor;
import dev.owlery.proto.v1.GenerateDelta;
import dev.owlery.proto.v1.GenerateFinish;
import io.grpc.Status;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;

/**
 * The coordinator's own work on one decode step, in process, for {@code owlery bench
 * --coordinator-step}: a group loop's gather of the ranks' answers and every sequence's sampling
 * (on a {@link SamplingPool} of one thread per core, as the coordinator runs it), detokenizing and
 * streaming (into a sink that keeps nothing), over answers made once from seeded
 * random logits of the model's vocabulary, split over the ranks as LoadSlice splits it. Measured
 * once with the whole rows crossing (what the coordinator did before candidates: the path it still
 * takes for samplers that need the whole row) and once with the ranks' top candidates.
 */
public final class CoordinatorStepBench {

  /**
   * One workload's figures.
   *
   * @param millisPerStep mean wall time of the coordinator's work on a step
   * @param bytesPerRank serialized size of one rank's answer (its logit rows or candidates)
   */
  public record Figures(double millisPerStep, long bytesPerRank) {}

  /** The figures with whole rows and with candidates, for one sampling workload. */
  public record Result(String workload, Figures wholeRows, Figures candidates) {}

  private static final GenerationSink DISCARD = new GenerationSink() {
    @Override
    public void onDelta(GenerateDelta delta) {}

    @Override
    public void onFinish(GenerateFinish finish) {}

    @Override
    public void onError(Status status) {}
  };

  private static final int WARMUP_STEPS = 10;
  /** LLaMA's BOS: every sequence's one-row prompt. */
  private static final int BOS = 1;

  private CoordinatorStepBench() {}

  /**
   * Times {@code steps} steps of {@code numSequences} sequences on {@code worldSize} ranks: greedy,
   * top-k 50 and top-p 0.9 (without top-k, which takes the whole row with or without candidates),
   * both at temperature 0.8.
   */
  public static List<Result> run(ServedModel model, int numSequences, int worldSize, int steps)
      throws InterruptedException {
    if (numSequences < 1 || worldSize < 1 || steps < 1) {
      throw new IllegalArgumentException("sequences, ranks and steps must be >= 1. Given: %d, %d, %d"
          .formatted(numSequences, worldSize, steps));
    }
    float[] logits = randomLogits(numSequences, model.vocabSize());
    List<Result> results = new ArrayList<>();
    Map<String, SamplingParams> workloads = new LinkedHashMap<>();
    workloads.put("greedy", SamplingParams.greedy());
    workloads.put("top-k 50", new SamplingParams(true, 0.8f, 50, 1f, 1f, 1L));
    workloads.put("top-p 0.9", new SamplingParams(true, 0.8f, 0, 0.9f, 1f, 1L)); // needs the whole row either way
    try (SamplingPool pool = SamplingPool.perCore()) {
      for (Map.Entry<String, SamplingParams> workload : workloads.entrySet()) {
        results.add(new Result(workload.getKey(),
            measure(model, workload.getValue(), false, logits, numSequences, worldSize, steps, pool),
            measure(model, workload.getValue(), true, logits, numSequences, worldSize, steps, pool)));
      }
    }
    return results;
  }

  private static Figures measure(ServedModel model, SamplingParams sampling, boolean candidates, float[] logits,
      int numSequences, int worldSize, int steps, SamplingPool pool) throws InterruptedException {
    GenerationMetrics metrics = new GenerationMetrics(new SimpleMeterRegistry());
    List<SequenceState> sequences = new ArrayList<>();
    List<StepSequence> rows = new ArrayList<>();
    List<LastRowLogits> outputs = new ArrayList<>();
    for (int i = 0; i < numSequences; i++) {
      SequenceRequest request = new SequenceRequest(new int[] {BOS}, 1, 0, sampling, Integer.MAX_VALUE, new int[0],
          List.of(), false, 0);
      GenerationJob job = new GenerationJob(i, request, List.of(), System.nanoTime(), DISCARD, new CompletableFuture<>());
      SequenceState sequence = new SequenceState(job, model, metrics, i, candidates);
      sequences.add(sequence);
      rows.add(sequence.nextRows(1));
      outputs.add(sequence.logits());
    }
    List<RunStepResponse> answers = answers(logits, rows, model.vocabSize(), worldSize);
    long nanos = 0;
    for (int step = 0; step < WARMUP_STEPS + steps; step++) {
      long start = System.nanoTime();
      StepFanOut.gather(answers, rows, outputs);
      pool.pickAll(sequences);
      for (int i = 0; i < numSequences; i++) {
        sequences.get(i).sampleNext();
      }
      if (step >= WARMUP_STEPS) {
        nanos += System.nanoTime() - start;
      }
    }
    return new Figures(nanos / 1e6 / steps, answers.getFirst().getSerializedSize());
  }

  /** Each rank's answer to the step, as it arrives: serialized and parsed again. */
  private static List<RunStepResponse> answers(float[] logits, List<StepSequence> rows, int vocabSize, int worldSize) {
    int sliceSize = Math.ceilDiv(vocabSize, worldSize);
    List<RunStepResponse> answers = new ArrayList<>();
    for (int r = 0; r < worldSize; r++) {
      int start = r * sliceSize;
      int width = Math.min(vocabSize, start + sliceSize) - start;
      ByteBuffer slices = buffer((long) rows.size() * width);
      List<int[]> ids = new ArrayList<>();
      ByteBuffer counts = buffer(rows.size());
      ByteBuffer logSumExps = buffer(rows.size());
      int numRows = 0;
      int numCandidates = 0;
      for (int i = 0; i < rows.size(); i++) {
        int offset = i * vocabSize + start;
        StepSequence row = rows.get(i);
        if (row.getNumCandidates() > 0) {
          int[] indexes = new int[width];
          int count = TopCandidates.select(logits, offset, width, row.getNumCandidates(), row.getCandidateTemperature(),
              indexes, new float[row.getNumCandidates()]);
          ids.add(Arrays.copyOf(indexes, count));
          counts.putInt(count);
          logSumExps.putFloat((float) TopCandidates.logSumExp(logits, offset, width));
          numCandidates += count;
        } else {
          slices.asFloatBuffer().put(numRows++ * width, logits, offset, width);
        }
      }
      ByteBuffer tokenIds = buffer(numCandidates);
      ByteBuffer values = buffer(numCandidates);
      int k = 0;
      for (int i = 0; i < rows.size(); i++) {
        if (rows.get(i).getNumCandidates() > 0) {
          for (int index : ids.get(k++)) {
            tokenIds.putInt(start + index);
            values.putFloat(logits[i * vocabSize + start + index]);
          }
        }
      }
      RunStepResponse.Builder answer = RunStepResponse.newBuilder().setStepId(1).setVocabStart(start)
          .setVocabEnd(start + width).setLogits(tensor(DType.DTYPE_F32, slices, (long) numRows * width * 4, numRows, width));
      if (!ids.isEmpty()) {
        answer.setCandidates(LogitCandidates.newBuilder()
            .setCounts(tensor(DType.DTYPE_I32, counts, counts.position(), ids.size()))
            .setTokenIds(tensor(DType.DTYPE_I32, tokenIds, tokenIds.position(), numCandidates))
            .setLogits(tensor(DType.DTYPE_F32, values, values.position(), numCandidates))
            .setLogSumExps(tensor(DType.DTYPE_F32, logSumExps, logSumExps.position(), ids.size())));
      }
      try {
        answers.add(RunStepResponse.parseFrom(answer.build().toByteString()));
      } catch (InvalidProtocolBufferException e) {
        throw new IllegalStateException(e);
      }
    }
    return answers;
  }

  private static ByteBuffer buffer(long elements) {
    return ByteBuffer.allocate(Math.toIntExact(elements * 4)).order(ByteOrder.LITTLE_ENDIAN);
  }

  private static Tensor tensor(DType dtype, ByteBuffer data, long bytes, long... shape) {
    Tensor.Builder tensor = Tensor.newBuilder().setDtype(dtype)
        .setData(ByteString.copyFrom(data.array(), 0, Math.toIntExact(bytes)));
    for (long size : shape) {
      tensor.addShape(size);
    }
    return tensor.build();
  }

  /** Logits like a language model's: mostly flat, a few high. */
  private static float[] randomLogits(int numSequences, int vocabSize) {
    Random random = new Random(42);
    float[] logits = new float[numSequences * vocabSize];
    for (int i = 0; i < logits.length; i++) {
      logits[i] = (float) (2 * random.nextGaussian());
    }
    return logits;
  }

}
