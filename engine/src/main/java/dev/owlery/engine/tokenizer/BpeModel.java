package dev.owlery.engine.tokenizer;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;

/**
 * SentencePiece's BPE segmentation ({@code bpe_model.cc}): split the normalized text into characters, then repeatedly
 * merge the adjacent pair whose joined piece is in the vocabulary with the highest score (leftmost on ties), until
 * no pair joins into a piece. Runs in O(n log n) with a priority queue over a linked list of symbols.
 */
final class BpeModel {

  private final Map<String, Integer> mergeableIds;
  private final float[] scores;
  private final boolean[] unused;
  private final List<String> userDefined;

  /**
   * @param mergeableIds the pieces merges may produce: NORMAL, USER_DEFINED and UNUSED, as SentencePiece's
   *     {@code pieces_} map (CONTROL, UNKNOWN and BYTE pieces are never produced from text)
   * @param scores every piece's score, by id
   * @param unused whether a piece is UNUSED (merged through, then split back into its two halves)
   * @param userDefined USER_DEFINED pieces, matched whole before merging and never merged further
   */
  BpeModel(Map<String, Integer> mergeableIds, float[] scores, boolean[] unused, List<String> userDefined) {
    this.mergeableIds = mergeableIds;
    this.scores = scores;
    this.unused = unused;
    this.userDefined = userDefined.stream().filter(piece -> !piece.isEmpty())
        .sorted((a, b) -> b.length() - a.length()).toList();
  }

  /** The id of a piece merges may produce, or -1 when it is not one. */
  int mergeableId(String piece) {
    Integer id = mergeableIds.get(piece);
    return id == null ? -1 : id;
  }

  /** A candidate merge of the symbols {@code left} and {@code right} into a piece of {@code length} chars. */
  private record Pair(int left, int right, float score, int length) {}

  /** Segments normalized text into pieces; a piece may be outside the vocabulary (a single unknown character). */
  List<String> segment(String normalized) {
    Symbols symbols = new Symbols(normalized, userDefined);
    int count = symbols.count();
    if (count == 0) {
      return List.of();
    }
    // bpe_model.cc SymbolPairComparator: higher score first, then the smaller left index.
    PriorityQueue<Pair> agenda = new PriorityQueue<>(Math.max(1, count), (a, b) -> a.score() != b.score()
        ? Float.compare(b.score(), a.score()) : Integer.compare(a.left(), b.left()));
    Map<String, String[]> reverseMerges = new HashMap<>();
    for (int i = 1; i < count; i++) {
      offerPair(symbols, i - 1, i, agenda, reverseMerges);
    }
    while (!agenda.isEmpty()) {
      Pair top = agenda.poll();
      int left = top.left();
      int right = top.right();
      // Skip a pair one of whose symbols has changed since it was queued.
      if (symbols.length(left) == 0 || symbols.length(right) == 0
          || symbols.length(left) + symbols.length(right) != top.length()) {
        continue;
      }
      symbols.mergeWithNext(left);
      offerPair(symbols, symbols.prev[left], left, agenda, reverseMerges);
      offerPair(symbols, left, symbols.next[left], agenda, reverseMerges);
    }
    List<String> pieces = new ArrayList<>();
    for (int i = 0; i != -1; i = symbols.next[i]) {
      resegment(normalized.substring(symbols.start[i], symbols.end[i]), reverseMerges, pieces);
    }
    return pieces;
  }

  private void offerPair(Symbols symbols, int left, int right, PriorityQueue<Pair> agenda,
      Map<String, String[]> reverseMerges) {
    if (left == -1 || right == -1 || symbols.frozen[left] || symbols.frozen[right]) {
      return;
    }
    String piece = symbols.text.substring(symbols.start[left], symbols.end[right]);
    Integer id = mergeableIds.get(piece);
    if (id == null) {
      return;
    }
    agenda.add(new Pair(left, right, scores[id], piece.length()));
    if (unused[id]) {
      reverseMerges.put(piece, new String[] {
          symbols.text.substring(symbols.start[left], symbols.end[left]),
          symbols.text.substring(symbols.start[right], symbols.end[right])});
    }
  }

  /** An UNUSED piece is split back into the two symbols it was merged from, recursively. */
  private void resegment(String piece, Map<String, String[]> reverseMerges, List<String> out) {
    Integer id = mergeableIds.get(piece);
    String[] halves = id != null && unused[id] ? reverseMerges.get(piece) : null;
    if (halves == null) {
      out.add(piece);
      return;
    }
    resegment(halves[0], reverseMerges, out);
    resegment(halves[1], reverseMerges, out);
  }

  /** The symbols as a doubly linked list over char ranges of the normalized text. */
  private static final class Symbols {
    final String text;
    final int[] start;
    final int[] end;
    final int[] prev;
    final int[] next;
    final boolean[] frozen;
    private final int count;

    /** One symbol per code point, except that a USER_DEFINED piece (longest first) is one frozen symbol. */
    Symbols(String text, List<String> userDefined) {
      this.text = text;
      int capacity = text.length();
      this.start = new int[capacity];
      this.end = new int[capacity];
      this.prev = new int[capacity];
      this.next = new int[capacity];
      this.frozen = new boolean[capacity];
      int n = 0;
      int pos = 0;
      while (pos < text.length()) {
        int length = Character.charCount(text.codePointAt(pos));
        for (String piece : userDefined) {
          if (text.startsWith(piece, pos)) {
            length = piece.length();
            frozen[n] = true;
            break;
          }
        }
        start[n] = pos;
        end[n] = pos + length;
        prev[n] = n - 1;
        pos += length;
        next[n] = pos == text.length() ? -1 : n + 1;
        n++;
      }
      this.count = n;
    }

    int count() {
      return count;
    }

    int length(int i) {
      return end[i] - start[i];
    }

    /** Joins symbol {@code i} with its successor, which becomes empty. */
    void mergeWithNext(int i) {
      int right = next[i];
      end[i] = end[right];
      start[right] = end[right];
      next[i] = next[right];
      if (next[right] >= 0) {
        prev[next[right]] = i;
      }
    }
  }
}
