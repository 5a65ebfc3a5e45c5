package dev.owlery.engine.decoder;

import dev.owlery.engine.kv.KvCache;
import java.util.Arrays;

/**
 * The sequences of one batched step through a {@link DecoderSlice}, in row order: each its KV
 * cache, its number of new rows (at positions {@code cache.length()} onwards) and which of its rows
 * get logits. Reusable: {@link #clear()} and add again each step (no allocation per step). Used by
 * one thread.
 */
public final class DecoderBatch {

  private final KvCache[] caches;
  private final int[] numRows;
  private final LogitRows[] logitRows;
  private int numSequences;
  private int numTokens;
  private int numLogitRows;

  /** A batch of up to {@code maxNumSequences} sequences. */
  public DecoderBatch(int maxNumSequences) {
    if (maxNumSequences < 1) {
      throw new IllegalArgumentException("maxNumSequences must be >= 1. Given: " + maxNumSequences);
    }
    this.caches = new KvCache[maxNumSequences];
    this.numRows = new int[maxNumSequences];
    this.logitRows = new LogitRows[maxNumSequences];
  }

  /** Empties the batch. */
  public void clear() {
    Arrays.fill(caches, 0, numSequences, null);
    numSequences = 0;
    numTokens = 0;
    numLogitRows = 0;
  }

  /** Adds a sequence's next {@code rows} rows; its logits follow those of the sequences added before. */
  public void add(KvCache cache, int rows, LogitRows wanted) {
    if (numSequences == caches.length) {
      throw new IllegalArgumentException("a batch holds at most %d sequences".formatted(caches.length));
    }
    if (rows < 1) {
      throw new IllegalArgumentException("a sequence of a batch must have at least one row. Given: " + rows);
    }
    for (int i = 0; i < numSequences; i++) {
      if (caches[i] == cache) {
        throw new IllegalArgumentException("a KV cache may appear once in a batch; it is sequence %d already".formatted(i));
      }
    }
    caches[numSequences] = cache;
    numRows[numSequences] = rows;
    logitRows[numSequences] = wanted;
    numSequences++;
    numTokens += rows;
    numLogitRows += switch (wanted) {
      case ALL -> rows;
      case LAST -> 1;
    };
  }

  public int numSequences() {
    return numSequences;
  }

  /** Rows of all sequences together. */
  public int numTokens() {
    return numTokens;
  }

  /** Rows of logits the step writes. */
  public int numLogitRows() {
    return numLogitRows;
  }

  KvCache cache(int i) {
    return caches[i];
  }

  int numRows(int i) {
    return numRows[i];
  }

  LogitRows logitRows(int i) {
    return logitRows[i];
  }
}
