package dev.owlery.engine.decoder;

/**
 * One rank's share of the vocabulary rows of lm_head, split as vLLM's {@code ParallelLMHead} does:
 * every rank is given {@code ceil(vocabSize / N)} rows, rank r those from {@code r * rowsPerRank};
 * the rows past {@code vocabSize} that the last rank(s) are given are padding. Padding exists only
 * in this arithmetic: no weights are read and no logits are computed or sent for it, so the real
 * ids {@code [start, end)} are all a rank produces and the gathered logits are exactly
 * {@code vocabSize} wide.
 *
 * @param start first vocabulary id of the rank
 * @param end one past its last real id ({@code <= vocabSize})
 * @param rowsPerRank rows every rank is given, padding included
 */
public record VocabSlice(int start, int end, int rowsPerRank) {

  /**
   * The slice of {@code tp}'s rank.
   *
   * @throws IllegalArgumentException when the vocabulary is too small to leave every rank at
   *     least one real row
   */
  public static VocabSlice of(TensorParallelRank tp, int vocabSize) {
    if (vocabSize < 1) {
      throw new IllegalArgumentException("vocab_size must be >= 1. Given: " + vocabSize);
    }
    int rowsPerRank = Math.ceilDiv(vocabSize, tp.size());
    long lastStart = (long) (tp.size() - 1) * rowsPerRank;
    if (lastStart >= vocabSize) {
      throw new IllegalArgumentException(("vocab_size (%d) is too small for the tensor-parallel size (%d): at %d rows "
          + "per rank the last rank would hold only padding; use fewer ranks")
          .formatted(vocabSize, tp.size(), rowsPerRank));
    }
    int start = tp.rank() * rowsPerRank;
    return new VocabSlice(start, Math.min(start + rowsPerRank, vocabSize), rowsPerRank);
  }

  /** Real vocabulary rows (ids) of this rank. */
  public int size() {
    return end - start;
  }

  /** Rows this rank is given past the end of the vocabulary (never materialized). */
  public int numPaddingRows() {
    return rowsPerRank - size();
  }
}
