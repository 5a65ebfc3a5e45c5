package dev.owlery.engine.decoder;

import dev.owlery.engine.sampling.Sampler;
import java.util.Arrays;

/**
 * Prompt prefill and the decode loop (spec §4: generated tokens are text and continue the
 * positions). Buffers are allocated once per generation; the loop itself allocates nothing.
 */
public final class Generator {

  private static final int[] NONE = new int[0];

  private final Decoder decoder;

  public Generator(Decoder decoder) {
    this.decoder = decoder;
  }

  /** Generates after text-only {@code promptIds}; the ids are also the repetition-penalty context. */
  public GenerationResult generate(DecoderSequence sequence, int[] promptIds, Sampler sampler, StopCondition stop,
      TokenListener listener) {
    int hidden = decoder.config().hiddenSize();
    float[] embeds = new float[Math.multiplyExact(promptIds.length, hidden)];
    decoder.embed(promptIds, 0, promptIds.length, embeds, 0);
    Modality[] modalities = new Modality[promptIds.length];
    Arrays.fill(modalities, Modality.TEXT);
    sampler.observe(promptIds);
    return generate(sequence, embeds, modalities, promptIds.length, sampler, stop, listener);
  }

  /**
   * Generates after {@code numTokens} prompt rows (text embeddings with visual rows spliced in by
   * the caller, one modality per row). Prompt ids for the repetition penalty go to
   * {@link Sampler#observe} first.
   */
  public GenerationResult generate(DecoderSequence sequence, float[] inputsEmbeds, Modality[] modalities,
      int numTokens, Sampler sampler, StopCondition stop, TokenListener listener) {
    return generate(sequence, inputsEmbeds, modalities, numTokens, sampler, stop, new float[0], listener);
  }

  /**
   * As above, also writing the logits of every prompt row into {@code promptLogits} ({@code
   * numTokens x vocabSize}) when it is non-empty; an empty array asks for none.
   */
  public GenerationResult generate(DecoderSequence sequence, float[] inputsEmbeds, Modality[] modalities,
      int numTokens, Sampler sampler, StopCondition stop, float[] promptLogits, TokenListener listener) {
    int vocab = decoder.config().vocabSize();
    float[] logits = new float[vocab];
    float[] tokenRow = new float[decoder.config().hiddenSize()];
    Modality[] text = {Modality.TEXT};
    int[] tokenIds = new int[stop.maxNewTokens()];
    if (promptLogits.length == 0) {
      decoder.forward(sequence, inputsEmbeds, 0, modalities, numTokens, LogitRows.LAST, logits);
    } else {
      decoder.forward(sequence, inputsEmbeds, 0, modalities, numTokens, LogitRows.ALL, promptLogits);
      System.arraycopy(promptLogits, (numTokens - 1) * vocab, logits, 0, vocab);
    }
    int count = 0;
    while (true) {
      int token = sampler.sample(logits, count < stop.minNewTokens() ? stop.stopTokenIdsView() : NONE);
      listener.onToken(token, logits);
      tokenIds[count++] = token;
      FinishReason reason = stop.isStopToken(token) ? FinishReason.STOP_TOKEN
          : count == stop.maxNewTokens() ? FinishReason.MAX_NEW_TOKENS
          // The prompt and the tokens generated fill every position (HF's max_length, llama2.c's
          // steps, the coordinator's max_positions); the token just sampled would need one more.
          : sequence.length() + 1 >= sequence.capacity() ? FinishReason.MAX_POSITIONS
          : null;
      if (reason != null) {
        return new GenerationResult(Arrays.copyOf(tokenIds, count), reason);
      }
      decoder.embed(token, tokenRow, 0);
      decoder.forward(sequence, tokenRow, 0, text, 1, LogitRows.LAST, logits);
    }
  }
}
