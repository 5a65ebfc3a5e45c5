package dev.owlery.engine.sampling;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.Random;
import org.junit.jupiter.api.Test;

/** HF 4.31 sampling semantics (spec §7), with fixed seeds. */
class SamplerTest {

  private static final int[] NONE = new int[0];

  private static float[] randomLogits(Random random, int n) {
    float[] logits = new float[n];
    for (int i = 0; i < n; i++) {
      logits[i] = (float) (3 * random.nextGaussian());
    }
    return logits;
  }

  @Test
  void greedyTakesTheLowestIdOnTies() {
    Sampler sampler = new Sampler(SamplingParams.greedy(), 5);
    assertThat(sampler.sample(new float[] {1f, 5f, 2f, 5f, 5f}, NONE)).isEqualTo(1);
  }

  @Test
  void theSameSeedGivesTheSameTokens() {
    SamplingParams params = new SamplingParams(true, 0.9f, 50, 0.9f, 1.1f, 1234L);
    Random random = new Random(5);
    float[][] steps = new float[64][];
    for (int i = 0; i < steps.length; i++) {
      steps[i] = randomLogits(random, 300);
    }
    int[] first = run(new Sampler(params, 300), steps);
    int[] second = run(new Sampler(params, 300), steps);
    int[] otherSeed = run(new Sampler(new SamplingParams(true, 0.9f, 50, 0.9f, 1.1f, 99L), 300), steps);
    assertThat(second).containsExactly(first);
    assertThat(otherSeed).isNotEqualTo(first);
  }

  private static int[] run(Sampler sampler, float[][] steps) {
    int[] out = new int[steps.length];
    for (int i = 0; i < steps.length; i++) {
      out[i] = sampler.sample(steps[i], NONE);
    }
    return out;
  }

  @Test
  void topKOneAndTinyTopPEqualGreedy() {
    Random random = new Random(17);
    Sampler topK = new Sampler(new SamplingParams(true, 1.3f, 1, 1f, 1f, 3L), 200);
    Sampler topP = new Sampler(new SamplingParams(true, 1.3f, 0, 1e-6f, 1f, 4L), 200);
    for (int i = 0; i < 100; i++) {
      float[] logits = randomLogits(random, 200);
      int greedy = Sampler.argmax(logits, 200);
      assertThat(topK.sample(logits, NONE)).isEqualTo(greedy);
      assertThat(topP.sample(logits, NONE)).isEqualTo(greedy);
    }
  }

  @Test
  void topPDropsTheTailWhoseCumulativeProbabilityIsAtMostOneMinusTopP() {
    // probabilities 0.5, 0.3, 0.2: with top_p 0.6 the ascending cumsum 0.2 <= 0.4 drops id 2 only
    float[] logits = {(float) Math.log(0.5), (float) Math.log(0.3), (float) Math.log(0.2)};
    Sampler sampler = new Sampler(new SamplingParams(true, 1f, 0, 0.6f, 1f, 7L), 3);
    int[] counts = new int[3];
    for (int i = 0; i < 4000; i++) {
      counts[sampler.sample(logits, NONE)]++;
    }
    assertThat(counts[2]).isZero();
    // renormalised 0.5 / 0.8 = 0.625; a fixed seed makes the count exact, the bound is 5 sigma
    assertThat(counts[0] / 4000.0).isCloseTo(0.625, org.assertj.core.data.Offset.offset(0.04));
  }

  @Test
  void temperatureSharpensOrFlattensTheDistribution() {
    float[] logits = {0f, 1f};
    int[] hot = new int[2];
    int[] plain = new int[2];
    int[] cold = new int[2];
    Sampler hotSampler = new Sampler(new SamplingParams(true, 100f, 0, 1f, 1f, 1L), 2);
    Sampler plainSampler = new Sampler(new SamplingParams(true, 1f, 0, 1f, 1f, 1L), 2);
    Sampler coldSampler = new Sampler(new SamplingParams(true, 0.01f, 0, 1f, 1f, 1L), 2);
    for (int i = 0; i < 10000; i++) {
      hot[hotSampler.sample(logits, NONE)]++;
      plain[plainSampler.sample(logits, NONE)]++;
      cold[coldSampler.sample(logits, NONE)]++;
    }
    // softmax([0, 1]) = [0.269, 0.731]; at T=100 about [0.4975, 0.5025]; at T=0.01 e^-100 ~ 0
    assertThat(plain[1] / 10000.0).isCloseTo(0.731, org.assertj.core.data.Offset.offset(0.03));
    assertThat(hot[1] / 10000.0).isCloseTo(0.5025, org.assertj.core.data.Offset.offset(0.03));
    assertThat(cold[0]).isZero();
  }

  @Test
  void repetitionPenaltyDividesPositiveAndMultipliesNegativeScoresOfSeenTokens() {
    Sampler sampler = new Sampler(new SamplingParams(false, 1f, 0, 1f, 2f, 0L), 4);
    sampler.observe(0, 1);
    // [2, -1, 1.5, -3] -> [1, -2, 1.5, -3]: token 2 wins; the logits array itself is untouched
    float[] logits = {2f, -1f, 1.5f, -3f};
    assertThat(sampler.sample(logits, NONE)).isEqualTo(2);
    assertThat(logits).containsExactly(2f, -1f, 1.5f, -3f);
    // token 2 is now seen too: [1, -2, 0.75, -3]
    assertThat(sampler.sample(logits, NONE)).isEqualTo(0);
  }

  @Test
  void forbiddenIdsAreNeverChosen() {
    Sampler sampler = new Sampler(SamplingParams.greedy(), 3);
    assertThat(sampler.sample(new float[] {0f, 0f, 9f}, new int[] {2})).isEqualTo(0);
  }

  @Test
  void invalidParametersAreRejectedNamingTheParameterAndValue() {
    assertThatThrownBy(() -> new SamplingParams(true, 0f, 50, 1f, 1f, 0L))
        .hasMessageContaining("temperature").hasMessageContaining("0.0");
    assertThatThrownBy(() -> new SamplingParams(true, 1f, -1, 1f, 1f, 0L))
        .hasMessageContaining("top_k").hasMessageContaining("-1");
    assertThatThrownBy(() -> new SamplingParams(true, 1f, 50, 1.5f, 1f, 0L))
        .hasMessageContaining("top_p").hasMessageContaining("1.5");
    assertThatThrownBy(() -> new SamplingParams(true, 1f, 50, 0f, 1f, 0L))
        .hasMessageContaining("top_p").hasMessageContaining("0.0");
    assertThatThrownBy(() -> new SamplingParams(false, 1f, 50, 1f, 0f, 0L))
        .hasMessageContaining("repetition_penalty").hasMessageContaining("0.0");
  }

  @Test
  void presencePenaltySubtractsOncePerGeneratedTokenNotPerPromptToken() {
    Sampler sampler = new Sampler(SamplingParams.greedy().withPenalties(1f, 0f), 3);
    sampler.observe(1); // prompt tokens are not penalized by presence/frequency
    float[] logits = {3f, 2.5f, 0f};
    // [3, 2.5, 0] -> 0; [2, 2.5, 0] -> 1; [2, 1.5, 0] -> 0; token 0 twice is still 3 - 1 = 2 -> 0
    assertThat(run(sampler, new float[][] {logits, logits, logits, logits})).containsExactly(0, 1, 0, 0);
  }

  @Test
  void frequencyPenaltySubtractsOncePerTimeGenerated() {
    Sampler sampler = new Sampler(SamplingParams.greedy().withPenalties(0f, 1f), 3);
    float[] logits = {3f, 2.5f, 0f};
    // [3, 2.5] -> 0; [2, 2.5] -> 1; [2, 1.5] -> 0; [1, 1.5] -> 1; [1, 0.5] -> 0
    assertThat(run(sampler, new float[][] {logits, logits, logits, logits, logits})).containsExactly(0, 1, 0, 1, 0);
  }

  @Test
  void negativePenaltiesFavourGeneratedTokens() {
    Sampler sampler = new Sampler(SamplingParams.greedy().withPenalties(-0.5f, -0.5f), 2);
    // [1, 1.2] -> 1; then token 1 gets +1: 2.2 -> 1 again, never 0
    float[] logits = {1f, 1.2f};
    assertThat(run(sampler, new float[][] {logits, logits, logits})).containsExactly(1, 1, 1);
  }

  @Test
  void minPKeepsTokensWithProbabilityAtLeastMinPTimesTheLargest() {
    // probabilities 0.5, 0.3, 0.15, 0.05; min_p 0.2 -> threshold 0.1: id 3 goes, the rest renormalise to
    // 0.5 / 0.95 = 0.526, 0.3 / 0.95 = 0.316, 0.15 / 0.95 = 0.158
    float[] logits = {(float) Math.log(0.5), (float) Math.log(0.3), (float) Math.log(0.15), (float) Math.log(0.05)};
    int[] counts = draw(new Sampler(new SamplingParams(true, 1f, 0, 1f, 1f, 11L).withMinP(0.2f), 4), logits, 8000);
    assertThat(counts[3]).isZero();
    // a fixed seed makes the counts exact; the bounds are 5 sigma of 8000 draws
    assertThat(counts[0] / 8000.0).isCloseTo(0.526, org.assertj.core.data.Offset.offset(0.028));
    assertThat(counts[2] / 8000.0).isCloseTo(0.158, org.assertj.core.data.Offset.offset(0.021));
  }

  @Test
  void minPIsAppliedAfterTemperature() {
    // T = 2 turns p into sqrt(p): 0.707, 0.548, 0.387, 0.224, ratios to the largest 1, 0.775, 0.548, 0.316.
    // min_p 0.5 keeps ids 0-2 (at T = 1 the ratios 1, 0.6, 0.3, 0.1 would keep ids 0-1 only);
    // renormalised: 0.707 / 1.642 = 0.431, 0.387 / 1.642 = 0.236
    float[] logits = {(float) Math.log(0.5), (float) Math.log(0.3), (float) Math.log(0.15), (float) Math.log(0.05)};
    int[] counts = draw(new Sampler(new SamplingParams(true, 2f, 0, 1f, 1f, 12L).withMinP(0.5f), 4), logits, 8000);
    assertThat(counts[3]).isZero();
    assertThat(counts[0] / 8000.0).isCloseTo(0.431, org.assertj.core.data.Offset.offset(0.028));
    assertThat(counts[2] / 8000.0).isCloseTo(0.236, org.assertj.core.data.Offset.offset(0.024));
  }

  private static int[] draw(Sampler sampler, float[] logits, int n) {
    int[] counts = new int[logits.length];
    for (int i = 0; i < n; i++) {
      counts[sampler.sample(logits, NONE)]++;
    }
    return counts;
  }

  @Test
  void minPAndPenaltiesAreValidatedNamingTheParameterAndValue() {
    SamplingParams base = SamplingParams.sample(1f, 1f, 0L);
    assertThatThrownBy(() -> base.withMinP(1.5f)).hasMessageContaining("min_p").hasMessageContaining("1.5");
    assertThatThrownBy(() -> base.withMinP(-0.1f)).hasMessageContaining("min_p").hasMessageContaining("-0.1");
    assertThatThrownBy(() -> base.withPenalties(2.5f, 0f))
        .hasMessageContaining("presence_penalty").hasMessageContaining("2.5");
    assertThatThrownBy(() -> base.withPenalties(0f, Float.NaN))
        .hasMessageContaining("frequency_penalty").hasMessageContaining("NaN");
    assertThat(SamplingParams.greedy().minP()).isZero();
    assertThat(SamplingParams.greedy().presencePenalty()).isZero();
  }
}
