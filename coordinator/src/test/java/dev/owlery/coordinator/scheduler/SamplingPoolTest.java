package dev.owlery.coordinator.scheduler;

import static org.assertj.core.api.Assertions.assertThat;

import dev.owlery.coordinator.model.ServedModel;
import dev.owlery.engine.sampling.SamplingParams;
import dev.owlery.engine.testing.Fixtures;
import dev.owlery.proto.v1.GenerateDelta;
import dev.owlery.proto.v1.GenerateFinish;
import io.grpc.Status;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;

/**
 * A step's tokens picked on the sampling threads are the tokens the loop's thread picks alone:
 * each sequence keeps its own seeded sampler, whichever thread runs it. tiny-owl2's 32,000-token
 * vocabulary, top-p sampling (whole rows, the case the threads are for).
 */
class SamplingPoolTest {

  private static final int NUM_SEQUENCES = 48;
  private static final int NUM_STEPS = 4;

  @Test
  void pickedOnThreadsTheTokensAreThoseOfOneThread() throws InterruptedException {
    ServedModel model = ServedModel.load(Fixtures.tinyOwl2(), "tiny-owl2");
    int vocab = model.vocabSize();
    List<List<Integer>> pooled = new ArrayList<>();
    List<List<Integer>> alone = new ArrayList<>();
    List<SequenceState> pooledSequences = sequences(model, pooled);
    List<SequenceState> aloneSequences = sequences(model, alone);
    Random random = new Random(9);
    try (SamplingPool pool = new SamplingPool(3)) {
      for (int step = 0; step < NUM_STEPS; step++) {
        for (int i = 0; i < NUM_SEQUENCES; i++) {
          float[] row = new float[vocab];
          for (int t = 0; t < vocab; t++) {
            row[t] = (float) (2 * random.nextGaussian());
          }
          pooledSequences.get(i).logits().addSlice(FloatBuffer.wrap(row), 0, 0, vocab);
          aloneSequences.get(i).logits().addSlice(FloatBuffer.wrap(row), 0, 0, vocab);
        }
        pool.pickAll(pooledSequences);
        assertThat(Thread.getAllStackTraces().keySet()).as("the picks ran on the pool's threads")
            .anyMatch(thread -> thread.getName().startsWith("owlery-sampling-"));
        pooledSequences.forEach(SequenceState::sampleNext);
        aloneSequences.forEach(SequenceState::sampleNext);
      }
    }

    assertThat(pooled).isEqualTo(alone).allSatisfy(tokens -> assertThat(tokens).hasSize(NUM_STEPS));
    assertThat(pooled.stream().distinct().count()).as("seeds differ, so do the sequences").isGreaterThan(1);
  }

  /** Sequences whose whole-row samplers are seeded 0, 1, ...; each one's tokens go to {@code tokens}. */
  private static List<SequenceState> sequences(ServedModel model, List<List<Integer>> tokens) {
    GenerationMetrics metrics = new GenerationMetrics(new SimpleMeterRegistry());
    List<SequenceState> sequences = new ArrayList<>();
    for (int i = 0; i < NUM_SEQUENCES; i++) {
      SamplingParams topP = new SamplingParams(true, 0.9f, 0, 0.9f, 1f, i);
      SequenceRequest request = new SequenceRequest(new int[] {1}, 1, 0, topP, 100, new int[0], List.of(), false, 0);
      List<Integer> own = new ArrayList<>();
      tokens.add(own);
      GenerationSink sink = new GenerationSink() {
        @Override
        public void onDelta(GenerateDelta delta) {
          own.addAll(delta.getTokenIdsList());
        }

        @Override
        public void onFinish(GenerateFinish finish) {}

        @Override
        public void onError(Status status) {}
      };
      SequenceState sequence = new SequenceState(new GenerationJob(i, request, List.of(), System.nanoTime(), sink,
          new CompletableFuture<>()), model, metrics, i);
      assertThat(sequence.logits().numCandidates()).isZero();
      sequences.add(sequence);
    }
    return sequences;
  }
}
