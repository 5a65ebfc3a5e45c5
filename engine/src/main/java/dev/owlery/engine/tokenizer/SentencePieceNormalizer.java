package dev.owlery.engine.tokenizer;

/**
 * SentencePiece's identity normalizer: optional removal of extra spaces, the dummy-prefix space and the escaping of
 * spaces as {@code ▁} (U+2581), as {@code normalizer.cc} applies them when no precompiled character map is set.
 *
 * @param addDummyPrefix prepend one space so that a word at the start reads like one after a space
 * @param removeExtraWhitespaces drop leading and trailing spaces and collapse runs of spaces into one
 * @param escapeWhitespaces write every space as {@code ▁}
 */
record SentencePieceNormalizer(boolean addDummyPrefix, boolean removeExtraWhitespaces, boolean escapeWhitespaces) {

  /** The whitespace marker SentencePiece writes for a space. */
  static final char SPACE_SYMBOL = '\u2581';

  /** The normalized text; empty when the text is empty or (with extra-space removal) only spaces. */
  String normalize(String text) {
    int begin = 0;
    if (removeExtraWhitespaces) {
      while (begin < text.length() && text.charAt(begin) == ' ') {
        begin++;
      }
    }
    // No dummy prefix for an empty input: "" encodes to [] (fixture llama2-tokenizer, case "").
    if (begin == text.length()) {
      return "";
    }
    char space = escapeWhitespaces ? SPACE_SYMBOL : ' ';
    StringBuilder normalized = new StringBuilder(text.length() - begin + 1);
    if (addDummyPrefix) {
      normalized.append(space);
    }
    boolean previousIsSpace = removeExtraWhitespaces;
    for (int i = begin; i < text.length(); i++) {
      char c = text.charAt(i);
      if (c == ' ') {
        if (!previousIsSpace) {
          normalized.append(space);
        }
        previousIsSpace = removeExtraWhitespaces;
      } else {
        normalized.append(c);
        previousIsSpace = false;
      }
    }
    if (removeExtraWhitespaces) {
      // As normalizer.cc, this strips every trailing space marker, also a literal ▁ typed in the text.
      int end = normalized.length();
      while (end > 0 && normalized.charAt(end - 1) == space) {
        end--;
      }
      normalized.setLength(end);
    }
    return normalized.toString();
  }
}
