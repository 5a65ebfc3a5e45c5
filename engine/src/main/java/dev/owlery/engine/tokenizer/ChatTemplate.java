package dev.owlery.engine.tokenizer;

/** How a user's question becomes the prompt text the model reads (spec §7, {@code mplug_owl2/conversation.py}). */
public enum ChatTemplate {
  /**
   * {@code conv_mplug_owl2} (style TWO_NO_SYS, no system text) for one user turn: {@code USER: <|image|>{q} ASSISTANT:},
   * with one placeholder per image prepended to the question unless the question already places them itself.
   */
  MPLUG_OWL2,
  /** The text as given; its placeholders must match the images. */
  NONE;

  /**
   * The prompt for {@code question} sent with {@code numImages} pictures.
   *
   * @throws IllegalArgumentException when the question places a different number of {@code <|image|>} placeholders
   *     than there are images (the k-th placeholder takes the k-th picture, spec §5)
   */
  public String prompt(String question, int numImages) {
    if (numImages < 0) {
      throw new IllegalArgumentException("numImages must be >= 0. Given: " + numImages);
    }
    int numPlaceholders = ImageToken.count(question);
    boolean prependPlaceholders = switch (this) {
      case MPLUG_OWL2 -> numPlaceholders == 0;
      case NONE -> false;
    };
    if (!prependPlaceholders && numPlaceholders != numImages) {
      throw new IllegalArgumentException("the prompt has %d %s placeholders but %d images were given"
          .formatted(numPlaceholders, ImageToken.PLACEHOLDER, numImages));
    }
    return switch (this) {
      case MPLUG_OWL2 -> "USER: " + (prependPlaceholders ? ImageToken.PLACEHOLDER.repeat(numImages) : "") + question
          + " ASSISTANT:";
      case NONE -> question;
    };
  }
}
