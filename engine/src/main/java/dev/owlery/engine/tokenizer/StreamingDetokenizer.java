package dev.owlery.engine.tokenizer;

/**
 * Turns one sequence's ids into text as they are generated: the deltas returned by {@link #next} and then
 * {@link #finish} concatenate to exactly {@link SentencePieceTokenizer#decode} of all the ids. A UTF-8 character
 * spelled by byte-fallback pieces is held back until it is complete, so no delta splits a character. One instance
 * per sequence, used by one thread at a time.
 */
public final class StreamingDetokenizer {

  private static final String REPLACEMENT_CHARACTER = "\uFFFD";
  private static final int MAX_UTF8_LENGTH = 4;

  private final SentencePieceTokenizer tokenizer;
  /** Bytes of the current byte-piece run not yet written: a prefix of one incomplete UTF-8 character. */
  private final int[] pendingBytes = new int[MAX_UTF8_LENGTH];
  private int numPendingBytes;
  private final StringBuilder delta = new StringBuilder();
  /** The state of sentencepiece_processor.cc Decode: text written so far is empty / a leading space was dropped. */
  private boolean textEmpty = true;
  private boolean leadingSpaceSeen;
  private boolean atBeginning = true;

  StreamingDetokenizer(SentencePieceTokenizer tokenizer) {
    this.tokenizer = tokenizer;
  }

  /** The text {@code id} adds; empty while a byte-fallback character is incomplete or for a control piece. */
  public String next(int id) {
    tokenizer.checkId(id);
    int byteValue = tokenizer.byteValue(id);
    delta.setLength(0);
    if (byteValue >= 0) {
      pendingBytes[numPendingBytes++] = byteValue;
      writeBytes(false);
      return takeDelta();
    }
    // A non-byte piece ends the byte run: its bytes are decoded now, complete or not.
    writeBytes(true);
    textEmpty &= delta.isEmpty();
    if (leadingSpaceSeen || !textEmpty) {
      atBeginning = false;
    }
    String surface = switch (tokenizer.pieceType(id)) {
      case CONTROL -> {
        leadingSpaceSeen = false;
        yield "";
      }
      case UNKNOWN -> {
        leadingSpaceSeen = false;
        yield tokenizer.unkSurface();
      }
      case NORMAL, USER_DEFINED, UNUSED -> surfaceOfText(id);
      case BYTE -> throw new IllegalStateException("byte piece " + id + " has no byte value");
    };
    if (delta.isEmpty()) {
      textEmpty &= surface.isEmpty();
      return surface;
    }
    delta.append(surface);
    return takeDelta();
  }

  /** The text still held back at the end of the sequence (an incomplete character becomes U+FFFD per byte). */
  public String finish() {
    delta.setLength(0);
    writeBytes(true);
    return takeDelta();
  }

  private String surfaceOfText(int id) {
    String surface = tokenizer.surface(id);
    boolean strip = atBeginning && tokenizer.stripsLeadingSpace()
        && tokenizer.piece(id).charAt(0) == SentencePieceNormalizer.SPACE_SYMBOL;
    leadingSpaceSeen = strip && tokenizer.leadingSpaceStripsOnce();
    return strip ? surface.substring(1) : surface;
  }

  private String takeDelta() {
    if (delta.isEmpty()) {
      return "";
    }
    textEmpty = false;
    return delta.toString();
  }

  /**
   * Writes the pending bytes that form whole characters, as sentencepiece's DecodeUTF8 reads them: a malformed byte
   * becomes one U+FFFD and reading resumes at the next byte. Without {@code endOfRun}, a valid but incomplete prefix
   * of a character stays pending.
   */
  private void writeBytes(boolean endOfRun) {
    int offset = 0;
    while (offset < numPendingBytes) {
      int consumed = decodeOne(offset, endOfRun);
      if (consumed == 0) {
        break;
      }
      offset += consumed;
    }
    System.arraycopy(pendingBytes, offset, pendingBytes, 0, numPendingBytes - offset);
    numPendingBytes -= offset;
  }

  /** Writes one character (or U+FFFD) starting at {@code offset}; returns the bytes used, 0 to wait for more. */
  private int decodeOne(int offset, boolean endOfRun) {
    int lead = pendingBytes[offset];
    if (lead < 0x80) {
      delta.append((char) lead);
      return 1;
    }
    int length = (lead & 0xE0) == 0xC0 ? 2 : (lead & 0xF0) == 0xE0 ? 3 : (lead & 0xF8) == 0xF0 ? 4 : 0;
    int available = numPendingBytes - offset;
    for (int i = 1; i < Math.min(length, available); i++) {
      if ((pendingBytes[offset + i] & 0xC0) != 0x80) {
        length = 0;
      }
    }
    if (length > available && !endOfRun) {
      return 0;
    }
    if (length == 0 || length > available) {
      delta.append(REPLACEMENT_CHARACTER);
      return 1;
    }
    int codePoint = lead & (0x7F >> length);
    for (int i = 1; i < length; i++) {
      codePoint = (codePoint << 6) | (pendingBytes[offset + i] & 0x3F);
    }
    int minimum = length == 2 ? 0x80 : length == 3 ? 0x800 : 0x10000;
    boolean valid = codePoint >= minimum && codePoint <= 0x10FFFF && (codePoint < 0xD800 || codePoint > 0xDFFF);
    if (!valid) {
      delta.append(REPLACEMENT_CHARACTER);
      return 1;
    }
    delta.appendCodePoint(codePoint);
    return length;
  }
}
