package dev.owlery.engine.model;

import dev.owlery.engine.decoder.Modality;

/**
 * A prompt ready for the decoder (spec §5): the token ids (with {@code -200} where pictures go),
 * and the spliced input rows — text ids embedded, each placeholder replaced by its picture's
 * visual rows — with one modality per row.
 *
 * @param tokenIds the prompt ids as tokenized, placeholders included
 * @param inputsEmbeds {@code numRows x hiddenSize} spliced embedding rows
 * @param modalities one per row: TEXT for embedded ids, VISUAL for picture rows
 * @param numImageRows how many rows came from pictures
 */
public record AssembledPrompt(int[] tokenIds, float[] inputsEmbeds, Modality[] modalities, int numImageRows) {

  public AssembledPrompt {
    tokenIds = tokenIds.clone();
  }

  /** Spliced length: ids minus placeholders plus the picture rows. */
  public int numRows() {
    return modalities.length;
  }

  @Override
  public int[] tokenIds() {
    return tokenIds.clone();
  }

  /** The modality indicators as the official code stores them (0 text, 1 visual). */
  public long[] modalityIndicators() {
    long[] out = new long[modalities.length];
    for (int i = 0; i < out.length; i++) {
      out[i] = modalities[i].index();
    }
    return out;
  }
}
