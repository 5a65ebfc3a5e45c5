package dev.owlery.engine.model;

/** What a request asks about: text to run through the template and tokenizer, or ready token ids. */
public sealed interface Prompt {

  /** Prompt text; {@code <|image|>} marks where pictures go (added by the template when absent). */
  record Text(String text) implements Prompt {
    public Text {
      if (text == null || text.isEmpty()) {
        throw new IllegalArgumentException("prompt must not be empty");
      }
    }
  }

  /** Token ids used as given (no template); {@code -200} marks where pictures go. */
  record TokenIds(int[] ids) implements Prompt {
    public TokenIds {
      if (ids == null || ids.length == 0) {
        throw new IllegalArgumentException("prompt token ids must not be empty");
      }
      ids = ids.clone();
    }

    @Override
    public int[] ids() {
      return ids.clone();
    }
  }
}
