package dev.owlery.engine.tokenizer;

/**
 * The image placeholder (spec §5, {@code mplug_owl2/constants.py}): the text {@code <|image|>} in a prompt becomes
 * the id {@code -200} in the token ids, which the decoder replaces by one picture's visual rows.
 */
public final class ImageToken {

  /** {@code DEFAULT_IMAGE_TOKEN}: the placeholder text; it is not in the vocabulary. */
  public static final String PLACEHOLDER = "<|image|>";

  /** {@code IMAGE_TOKEN_INDEX}: the placeholder id; never looked up in the embedding table. */
  public static final int INDEX = -200;

  private ImageToken() {}

  /** How many placeholders {@code text} holds (non-overlapping, left to right). */
  public static int count(String text) {
    int count = 0;
    for (int at = text.indexOf(PLACEHOLDER); at >= 0; at = text.indexOf(PLACEHOLDER, at + PLACEHOLDER.length())) {
      count++;
    }
    return count;
  }
}
