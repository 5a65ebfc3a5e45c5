package dev.owlery.engine.sampling;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import org.junit.jupiter.api.Test;

class TokenLogprobsTest {

  @Test
  void logSoftmaxOfTheRawLogitsWithTopAlternativesHighestFirstTiesByLowestId() {
    float[] logits = {9f, 1f, 3f, 3f, 2f, 9f};
    TokenLogprobs lp = TokenLogprobs.of(logits, 1, 4, 3, 3); // vocabulary = logits[1..5) = {1, 3, 3, 2}

    double normalizer = Math.log(Math.exp(1) + 2 * Math.exp(3) + Math.exp(2));
    assertThat(lp.tokenId()).isEqualTo(3);
    assertThat(lp.logprob()).isCloseTo((float) (2 - normalizer), within(1e-6f));
    assertThat(lp.topTokenIds()).containsExactly(1, 2, 3);
    assertThat(lp.topLogprobs()[0]).isCloseTo((float) (3 - normalizer), within(1e-6f));
    assertThat(lp.topLogprobs()[2]).isCloseTo((float) (2 - normalizer), within(1e-6f));
    double total = 0;
    for (float v : new float[] {1f, 3f, 3f, 2f}) {
      total += Math.exp(v - normalizer);
    }
    assertThat(total).isCloseTo(1.0, within(1e-9));
  }
}
