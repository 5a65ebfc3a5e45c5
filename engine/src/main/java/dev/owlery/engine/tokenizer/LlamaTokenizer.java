package dev.owlery.engine.tokenizer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The tokenizer mPLUG-Owl2 calls: HF's slow {@code LlamaTokenizer} (transformers 4.31, {@code legacy=true},
 * BOS added, no EOS) over a {@link SentencePieceTokenizer}, and {@code tokenizer_image_token} around the
 * {@code <|image|>} placeholders (spec §5, §6). Immutable and safe to share between threads.
 */
public final class LlamaTokenizer {

  private final SentencePieceTokenizer sentencePiece;
  /** The special-token texts split out of prompts, by id: {@code <unk>}, {@code <s>}, {@code </s>}. */
  private final String[] specialTexts;
  private final int[] specialIds;

  public LlamaTokenizer(SentencePieceTokenizer sentencePiece) {
    if (sentencePiece.bosId() < 0 || sentencePiece.eosId() < 0) {
      throw new IllegalArgumentException("a LLaMA tokenizer needs BOS and EOS pieces; this model has bos id %d, eos id %d"
          .formatted(sentencePiece.bosId(), sentencePiece.eosId()));
    }
    this.sentencePiece = sentencePiece;
    this.specialIds = new int[] {sentencePiece.unkId(), sentencePiece.bosId(), sentencePiece.eosId()};
    this.specialTexts = Arrays.stream(specialIds).mapToObj(sentencePiece::piece).toArray(String[]::new);
  }

  public SentencePieceTokenizer sentencePiece() {
    return sentencePiece;
  }

  /**
   * The ids of {@code tokenizer(text).input_ids}: the texts {@code <s>}, {@code </s>}, {@code <unk>} become their ids,
   * with no whitespace stripped around them, and each stretch of text between them is a separate SentencePiece
   * segment with its own dummy prefix (spec §6: {@code "A house.</s>USER:"} gives {@code ▁A ▁house . </s> ▁US ER :}).
   */
  public int[] encodeWithSpecials(String text, boolean addBos) {
    List<int[]> parts = new ArrayList<>();
    if (addBos) {
      parts.add(new int[] {sentencePiece.bosId()});
    }
    int segmentStart = 0;
    int[] nextAt = new int[specialTexts.length];
    Arrays.fill(nextAt, -2);
    while (true) {
      int special = nextSpecial(text, segmentStart, nextAt);
      int end = special < 0 ? text.length() : nextAt[special];
      if (end > segmentStart) {
        parts.add(sentencePiece.encode(text.substring(segmentStart, end), false));
      }
      if (special < 0) {
        break;
      }
      parts.add(new int[] {specialIds[special]});
      segmentStart = end + specialTexts[special].length();
    }
    return concat(parts);
  }

  /** The special text occurring first at or after {@code from} (the longest where two start together), or -1. */
  private int nextSpecial(String text, int from, int[] nextAt) {
    int best = -1;
    for (int k = 0; k < specialTexts.length; k++) {
      if (nextAt[k] != -1 && nextAt[k] < from) {
        nextAt[k] = text.indexOf(specialTexts[k], from);
      }
      if (nextAt[k] >= 0 && (best < 0 || nextAt[k] < nextAt[best]
          || (nextAt[k] == nextAt[best] && specialTexts[k].length() > specialTexts[best].length()))) {
        best = k;
      }
    }
    return best;
  }

  /**
   * The prompt ids of {@code tokenizer_image_token} (spec §5): the prompt is split at every {@code <|image|>}, each
   * non-empty chunk encoded with {@link #encodeWithSpecials} (BOS included), one {@link ImageToken#INDEX} between
   * consecutive chunks. When the first chunk starts with BOS, that one BOS stays at the front and every chunk loses
   * its own; a prompt starting with {@code <|image|>} keeps every chunk's BOS and has none in front.
   */
  public int[] tokenizeImagePrompt(String prompt) {
    List<int[]> chunks = new ArrayList<>();
    int chunkStart = 0;
    while (true) {
      int at = prompt.indexOf(ImageToken.PLACEHOLDER, chunkStart);
      int end = at < 0 ? prompt.length() : at;
      chunks.add(end > chunkStart ? encodeWithSpecials(prompt.substring(chunkStart, end), true) : new int[0]);
      if (at < 0) {
        break;
      }
      chunkStart = at + ImageToken.PLACEHOLDER.length();
    }
    int[] first = chunks.getFirst();
    int offset = first.length > 0 && first[0] == sentencePiece.bosId() ? 1 : 0;
    List<int[]> parts = new ArrayList<>();
    if (offset == 1) {
      parts.add(new int[] {sentencePiece.bosId()});
    }
    for (int i = 0; i < chunks.size(); i++) {
      if (i > 0) {
        parts.add(new int[] {ImageToken.INDEX});
      }
      int[] chunk = chunks.get(i);
      parts.add(Arrays.copyOfRange(chunk, Math.min(offset, chunk.length), chunk.length));
    }
    return concat(parts);
  }

  private static int[] concat(List<int[]> parts) {
    int[] ids = new int[parts.stream().mapToInt(part -> part.length).sum()];
    int at = 0;
    for (int[] part : parts) {
      System.arraycopy(part, 0, ids, at, part.length);
      at += part.length;
    }
    return ids;
  }
}
