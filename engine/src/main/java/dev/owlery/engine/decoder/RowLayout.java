package dev.owlery.engine.decoder;

import dev.owlery.engine.kv.KvCache;
import java.util.Arrays;

/**
 * Where each row of one pass through the layers belongs: its modality, its sequence's KV cache,
 * its position in that sequence, and the logits row it fills (-1: none). Attention writes and
 * reads each row's own cache at its own position; everything else treats the rows as one matrix.
 * Arrays are sized for the slice's step capacity once and reused by every pass.
 */
final class RowLayout {

  static final int NO_LOGITS = -1;

  final Modality[] modalities;
  private final KvCache[] caches;
  private final int[] positions;
  private final int[] logitRows;
  /** The distinct caches of the pass and their row counts, to commit after the layers. */
  private final KvCache[] sequenceCaches;
  private final int[] sequenceRows;
  private final int[] sequenceFirstRows;
  private int numSequences;
  private int numTokens;

  RowLayout(int capacity) {
    this.modalities = new Modality[capacity];
    this.caches = new KvCache[capacity];
    this.positions = new int[capacity];
    this.logitRows = new int[capacity];
    this.sequenceCaches = new KvCache[capacity];
    this.sequenceRows = new int[capacity];
    this.sequenceFirstRows = new int[capacity];
  }

  int capacity() {
    return caches.length;
  }

  void clear() {
    Arrays.fill(caches, 0, numTokens, null);
    Arrays.fill(sequenceCaches, 0, numSequences, null);
    numTokens = 0;
    numSequences = 0;
  }

  /**
   * Appends {@code count} rows of {@code cache} at its next positions, with modalities
   * {@code from[fromOffset, fromOffset + count)} and no logits; returns the first row's index.
   */
  int addSequence(KvCache cache, Modality[] from, int fromOffset, int count) {
    if (numTokens + count > caches.length) {
      throw new IllegalArgumentException("a pass holds at most %d rows. Given: %d".formatted(caches.length, numTokens + count));
    }
    if (cache.length() + count > cache.capacity()) {
      throw new IllegalArgumentException("cannot run %d tokens after %d cached positions: capacity is %d"
          .formatted(count, cache.length(), cache.capacity()));
    }
    int first = numTokens;
    for (int k = 0; k < count; k++) {
      modalities[first + k] = from[fromOffset + k];
      caches[first + k] = cache;
      positions[first + k] = cache.length() + k;
      logitRows[first + k] = NO_LOGITS;
    }
    sequenceCaches[numSequences] = cache;
    sequenceRows[numSequences] = count;
    sequenceFirstRows[numSequences] = first;
    numSequences++;
    numTokens += count;
    return first;
  }

  /** Makes {@code row}'s logits land in output row {@code logitRow}. */
  void wantLogits(int row, int logitRow) {
    logitRows[row] = logitRow;
  }

  int numTokens() {
    return numTokens;
  }

  KvCache cache(int row) {
    return caches[row];
  }

  int position(int row) {
    return positions[row];
  }

  /** The output logits row of {@code row}, or {@link #NO_LOGITS}. */
  int logitRow(int row) {
    return logitRows[row];
  }

  /** Sequences of the pass; sequence s holds rows {@code [firstRow(s), firstRow(s) + numRows(s))}, at consecutive positions. */
  int numSequences() {
    return numSequences;
  }

  int firstRow(int sequence) {
    return sequenceFirstRows[sequence];
  }

  int numRows(int sequence) {
    return sequenceRows[sequence];
  }

  /** Commits the rows of every sequence of the pass to its cache. */
  void advanceCaches() {
    for (int s = 0; s < numSequences; s++) {
      sequenceCaches[s].advance(sequenceRows[s]);
    }
  }
}
