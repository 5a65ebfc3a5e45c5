package dev.owlery.coordinator.scheduler;

import dev.owlery.engine.tokenizer.SentencePieceTokenizer;
import dev.owlery.proto.v1.TokenLogprob;
import dev.owlery.proto.v1.TopLogprob;

/**
 * Log-probabilities of one step: the natural log-softmax of the step's gathered logits as the
 * model produced them (no temperature, penalty or filtering), for the sampled token and the most
 * likely alternatives. Work arrays are allocated once per sequence. One thread.
 */
final class TokenLogprobs {

  private final SentencePieceTokenizer sentencePiece;
  private final int[] topIds;
  private final float[] topLogits;

  TokenLogprobs(SentencePieceTokenizer sentencePiece, int maxTop) {
    this.sentencePiece = sentencePiece;
    this.topIds = new int[maxTop];
    this.topLogits = new float[maxTop];
  }

  /** {@code log(sum(exp(logits)))}, computed stably in double. */
  static double logSumExp(float[] logits, int vocabSize) {
    float max = Float.NEGATIVE_INFINITY;
    for (int i = 0; i < vocabSize; i++) {
      max = Math.max(max, logits[i]);
    }
    double sum = 0;
    for (int i = 0; i < vocabSize; i++) {
      sum += Math.exp(logits[i] - (double) max);
    }
    return max + Math.log(sum);
  }

  /** The sampled {@code token}'s log-probability with the {@code numTop} most likely tokens (most likely first, lower id on ties). */
  TokenLogprob of(float[] logits, int vocabSize, int token, int numTop) {
    double logSumExp = logSumExp(logits, vocabSize);
    TokenLogprob.Builder logprob = TokenLogprob.newBuilder()
        .setTokenId(token).setToken(sentencePiece.piece(token)).setLogprob((float) (logits[token] - logSumExp));
    int count = selectTop(logits, vocabSize, numTop);
    for (int i = 0; i < count; i++) {
      logprob.addTopLogprobs(TopLogprob.newBuilder().setTokenId(topIds[i]).setToken(sentencePiece.piece(topIds[i]))
          .setLogprob((float) (topLogits[i] - logSumExp)));
    }
    return logprob.build();
  }

  /** Fills {@link #topIds}/{@link #topLogits} with the {@code numTop} largest logits in descending order. */
  private int selectTop(float[] logits, int vocabSize, int numTop) {
    if (numTop == 0) {
      return 0;
    }
    int count = 0;
    for (int id = 0; id < vocabSize; id++) {
      float value = logits[id];
      if (count == numTop && !(value > topLogits[count - 1])) {
        continue;
      }
      int at = count == numTop ? count - 1 : count++;
      while (at > 0 && value > topLogits[at - 1]) {
        topLogits[at] = topLogits[at - 1];
        topIds[at] = topIds[at - 1];
        at--;
      }
      topLogits[at] = value;
      topIds[at] = id;
    }
    return count;
  }
}
