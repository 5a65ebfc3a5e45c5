package dev.owlery.engine.sampling;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Choosing from the ranks' candidates ({@link TopCandidates}, merged into a {@link CandidateRow})
 * picks exactly the tokens that the whole row gives, draw for draw, with the vocabulary split
 * unevenly over one to three slices and logits rounded coarsely so that ties at the k-th candidate
 * (before and after the temperature) are common.
 */
class CandidateSamplingTest {

  private static final int VOCAB = 1000;
  private static final int[] NONE = new int[0];
  /** The slices' log-sum-exps cross the wire as float32: about 1e-6 relative of a value near 8. */
  private static final float LOGPROB_TOLERANCE = 1e-5f;

  @Test
  void greedyAndSeededTopKPickTheWholeRowsTokens() {
    SamplingParams[] all = {SamplingParams.greedy(), new SamplingParams(true, 0.7f, 5, 1f, 1f, 11L),
        new SamplingParams(true, 1.3f, 40, 0.8f, 1f, 12L), new SamplingParams(true, 0.9f, 50, 0.95f, 0.1f, 1f, 0f, 0f, 13L),
        new SamplingParams(true, 1f, 1, 1f, 1f, 14L)};
    int[][] splits = {{0, VOCAB}, {0, 500, VOCAB}, {0, 400, 401, VOCAB}};
    Random random = new Random(3);
    for (SamplingParams params : all) {
      for (int[] split : splits) {
        Sampler whole = new Sampler(params, VOCAB);
        Sampler fromCandidates = new Sampler(params, VOCAB);
        int k = fromCandidates.numCandidates(0);
        assertThat(k).isPositive();
        for (int step = 0; step < 300; step++) {
          float[] logits = coarseLogits(random);
          CandidateRow row = candidates(logits, split, k, fromCandidates.candidateTemperature());
          assertThat(fromCandidates.sample(row)).as("%s, slices %s, step %d", params, split.length - 1, step)
              .isEqualTo(whole.sample(logits, NONE));
        }
      }
    }
  }

  @Test
  void candidatesCarryFarFewerTokensThanTheRow() {
    Random random = new Random(4);
    float[] logits = new float[VOCAB];
    for (int i = 0; i < VOCAB; i++) {
      logits[i] = (float) random.nextGaussian();
    }
    CandidateRow row = candidates(logits, new int[] {0, 500, VOCAB}, 20, 0.8f);
    assertThat(row.size()).isBetween(40, 42); // 20 per slice, a rare tie at a boundary aside
  }

  @Test
  void logprobsOfTheChosenAndTheTopTokensMatchTheWholeRow() {
    Random random = new Random(5);
    for (int step = 0; step < 50; step++) {
      float[] logits = coarseLogits(random);
      Sampler sampler = new Sampler(SamplingParams.greedy(), VOCAB);
      int k = sampler.numCandidates(20);
      assertThat(k).isEqualTo(20);
      CandidateRow row = candidates(logits, new int[] {0, 333, 666, VOCAB}, k, 1f);
      int token = sampler.sample(row);
      TokenLogprobs expected = TokenLogprobs.of(logits, 0, VOCAB, token, 20);
      TokenLogprobs actual = TokenLogprobs.of(row, token, 20);
      assertThat(actual.topTokenIds()).containsExactly(expected.topTokenIds());
      assertThat(actual.logprob()).isCloseTo(expected.logprob(), within(LOGPROB_TOLERANCE));
      for (int j = 0; j < 20; j++) {
        assertThat(actual.topLogprobs()[j]).isCloseTo(expected.topLogprobs()[j], within(LOGPROB_TOLERANCE));
      }
    }
  }

  @Test
  void penaltiesAndSamplingWithoutTopKNeedTheWholeRow() {
    assertThat(new Sampler(new SamplingParams(false, 1f, 0, 1f, 1.1f, 0L), VOCAB).numCandidates(0)).isZero();
    assertThat(new Sampler(SamplingParams.greedy().withPenalties(0.5f, 0f), VOCAB).numCandidates(0)).isZero();
    assertThat(new Sampler(new SamplingParams(true, 1f, 0, 0.9f, 1f, 0L), VOCAB).numCandidates(0)).isZero();
    assertThat(new Sampler(new SamplingParams(true, 1f, Sampler.MAX_CANDIDATES + 1, 1f, 1f, 0L), VOCAB)
        .numCandidates(0)).isZero();
    assertThat(new Sampler(SamplingParams.greedy(), VOCAB).numCandidates(Sampler.MAX_CANDIDATES + 1)).isZero();
    assertThat(new Sampler(SamplingParams.greedy(), VOCAB).numCandidates(0)).isEqualTo(1);
    assertThat(new Sampler(new SamplingParams(true, 1f, 30, 0.9f, 1f, 0L), VOCAB).numCandidates(5)).isEqualTo(30);
  }

  @Test
  void selectKeepsEveryTieOfTheKthAfterTheTemperature() {
    // 1.5000002f and 1.5000001f differ by one ulp; divided by 1.5 they round to the same float.
    float[] logits = {0.5f, 1.5000002f, 2f, 1.5000001f, 1.5000001f};
    int[] indexes = new int[logits.length];
    int count = TopCandidates.select(logits, 0, logits.length, 2, 1.5f, indexes, new float[2]);
    assertThat(1.5000002f / 1.5f).isEqualTo(1.5000001f / 1.5f);
    assertThat(java.util.Arrays.copyOf(indexes, count)).containsExactly(1, 2, 3, 4);
    count = TopCandidates.select(logits, 0, logits.length, 2, 1f, indexes, new float[2]);
    assertThat(java.util.Arrays.copyOf(indexes, count)).containsExactly(1, 2);
  }

  /** Logits in steps of 1/4, so that many tie. */
  private static float[] coarseLogits(Random random) {
    float[] logits = new float[VOCAB];
    for (int i = 0; i < VOCAB; i++) {
      logits[i] = Math.round(12 * random.nextGaussian()) / 4f;
    }
    return logits;
  }

  /** What the coordinator merges from ranks holding {@code split}'s slices, each sending its candidates. */
  static CandidateRow candidates(float[] logits, int[] split, int k, float temperature) {
    CandidateRow row = new CandidateRow();
    int[] indexes = new int[VOCAB];
    float[] heap = new float[k];
    for (int s = 0; s + 1 < split.length; s++) {
      int start = split[s];
      int width = split[s + 1] - start;
      int count = TopCandidates.select(logits, start, width, k, temperature, indexes, heap);
      for (int i = 0; i < count; i++) {
        row.add(start + indexes[i], logits[start + indexes[i]]);
      }
      row.addLogSumExp((float) TopCandidates.logSumExp(logits, start, width));
    }
    return row;
  }
}
