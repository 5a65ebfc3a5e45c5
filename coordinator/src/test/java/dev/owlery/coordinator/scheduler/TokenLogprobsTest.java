package dev.owlery.coordinator.scheduler;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import dev.owlery.engine.testing.Fixtures;
import dev.owlery.engine.tokenizer.SentencePieceTokenizer;
import dev.owlery.proto.v1.TokenLogprob;
import dev.owlery.proto.v1.TopLogprob;
import org.junit.jupiter.api.Test;

class TokenLogprobsTest {

  @Test
  void logSoftmaxOfTheRawLogitsWithTheMostLikelyFirstAndLowerIdsOnTies() {
    SentencePieceTokenizer tokenizer = SentencePieceTokenizer.load(Fixtures.llama2Tokenizer().resolve("tokenizer.model"));
    float[] logits = new float[tokenizer.vocabSize()];
    logits[5] = 3;
    logits[7] = 3;
    logits[9] = 1;
    logits[11] = 2;

    TokenLogprob logprob = new TokenLogprobs(tokenizer, 20).of(logits, logits.length, 9, 3);

    double logSumExp = Math.log(2 * Math.exp(3) + Math.exp(2) + Math.exp(1) + (logits.length - 4));
    // Double arithmetic rounded once to float.
    assertThat((double) logprob.getLogprob()).isCloseTo(1 - logSumExp, within(1e-6));
    assertThat(logprob.getToken()).isEqualTo(tokenizer.piece(9));
    assertThat(logprob.getTopLogprobsList()).extracting(TopLogprob::getTokenId).containsExactly(5, 7, 11);
    assertThat((double) logprob.getTopLogprobs(2).getLogprob()).isCloseTo(2 - logSumExp, within(1e-6));
    assertThat(new TokenLogprobs(tokenizer, 0).of(logits, logits.length, 9, 0).getTopLogprobsList()).isEmpty();
  }
}
