package dev.owlery.engine.model;

import dev.owlery.engine.decoder.Decoder;
import dev.owlery.engine.decoder.Modality;
import dev.owlery.engine.tokenizer.ImageToken;
import java.util.List;

/**
 * Splices visual embeddings into token embeddings (spec §5, {@code
 * prepare_inputs_labels_for_multimodal}): walking the ids left to right, the k-th {@code -200} is
 * replaced by the rows of picture k; text ids are embedded with {@code embed_tokens}.
 */
public final class PromptAssembler {

  private final Decoder decoder;
  private final int numVisualTokens;

  /**
   * @param numVisualTokens rows per picture (num_learnable_queries + 1), 0 for a text-only model
   */
  public PromptAssembler(Decoder decoder, int numVisualTokens) {
    this.decoder = decoder;
    this.numVisualTokens = numVisualTokens;
  }

  /**
   * Assembles {@code tokenIds} with one visual-embedding block of {@code numVisualTokens x
   * hiddenSize} floats per placeholder, in order.
   *
   * @throws IllegalArgumentException when the placeholders and pictures differ in number, a
   *     picture block has the wrong size, or an id is outside the vocabulary
   */
  public AssembledPrompt assemble(int[] tokenIds, List<float[]> visualEmbeds) {
    int hidden = decoder.config().hiddenSize();
    int vocab = decoder.config().vocabSize();
    int numPlaceholders = 0;
    for (int i = 0; i < tokenIds.length; i++) {
      int id = tokenIds[i];
      if (id == ImageToken.INDEX) {
        numPlaceholders++;
      } else if (id < 0 || id >= vocab) {
        throw new IllegalArgumentException(
            "prompt token id %d at position %d is outside the vocabulary [0, %d)".formatted(id, i, vocab));
      }
    }
    if (numPlaceholders != visualEmbeds.size()) {
      throw new IllegalArgumentException(
          "the prompt has %d image placeholder(s) (%s) but %d image(s) were given; they must match"
              .formatted(numPlaceholders, ImageToken.PLACEHOLDER, visualEmbeds.size()));
    }
    if (numPlaceholders > 0 && numVisualTokens == 0) {
      throw new IllegalArgumentException("this model has no vision tower, so the prompt cannot contain images");
    }
    int numRows = tokenIds.length - numPlaceholders + numPlaceholders * numVisualTokens;
    float[] embeds = new float[Math.multiplyExact(numRows, hidden)];
    Modality[] modalities = new Modality[numRows];
    int row = 0;
    int picture = 0;
    for (int id : tokenIds) {
      if (id == ImageToken.INDEX) {
        float[] block = visualEmbeds.get(picture);
        if (block.length != numVisualTokens * hidden) {
          throw new IllegalArgumentException("image %d has %d visual floats, expected %d x %d"
              .formatted(picture, block.length, numVisualTokens, hidden));
        }
        System.arraycopy(block, 0, embeds, row * hidden, block.length);
        for (int k = 0; k < numVisualTokens; k++) {
          modalities[row++] = Modality.VISUAL;
        }
        picture++;
      } else {
        decoder.embed(id, embeds, row * hidden);
        modalities[row++] = Modality.TEXT;
      }
    }
    return new AssembledPrompt(tokenIds, embeds, modalities, numPlaceholders * numVisualTokens);
  }
}
