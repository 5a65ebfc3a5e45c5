package dev.owlery.engine.sampling;

import java.util.Arrays;

/**
 * One logit row as the coordinator receives it from the ranks of a vocabulary-parallel lm_head
 * when it asked for candidates ({@link TopCandidates}): the candidate tokens of every slice,
 * gathered and kept in ascending id order, and the log-sum-exp of the whole row, merged from the
 * slices' ({@code lse = log sum_r exp(lse_r)}). A buffer reused from step to step; not thread-safe.
 */
public final class CandidateRow {

  private int[] tokenIds = new int[64];
  private float[] logits = new float[64];
  private int size;
  private double logSumExp = Double.NEGATIVE_INFINITY;
  private boolean sorted = true;

  /** Empties the row for the next step. */
  public void clear() {
    size = 0;
    logSumExp = Double.NEGATIVE_INFINITY;
    sorted = true;
  }

  /** Adds one candidate of a slice. */
  public void add(int tokenId, float logit) {
    if (size == tokenIds.length) {
      tokenIds = Arrays.copyOf(tokenIds, size * 2);
      logits = Arrays.copyOf(logits, size * 2);
    }
    if (size > 0 && tokenId <= tokenIds[size - 1]) {
      sorted = false;
    }
    tokenIds[size] = tokenId;
    logits[size++] = logit;
  }

  /** Adds a slice's log-sum-exp to the row's. */
  public void addLogSumExp(double sliceLogSumExp) {
    double high = Math.max(logSumExp, sliceLogSumExp);
    double low = Math.min(logSumExp, sliceLogSumExp);
    logSumExp = low == Double.NEGATIVE_INFINITY ? high : high + Math.log1p(Math.exp(low - high));
  }

  public int size() {
    return size;
  }

  /** The i-th candidate's id, ascending in i. */
  public int tokenId(int i) {
    sortById();
    return tokenIds[i];
  }

  /** The i-th candidate's logit. */
  public float logit(int i) {
    sortById();
    return logits[i];
  }

  /** log(sum over the whole vocabulary of exp(logit)). */
  public double logSumExp() {
    return logSumExp;
  }

  /** Copies the logits, in id order, into {@code out[0, size)}. */
  void copyLogits(float[] out) {
    sortById();
    System.arraycopy(logits, 0, out, 0, size);
  }

  /** Slices arrive in rank order, which is id order; sorts only when a caller added out of order. */
  private void sortById() {
    if (sorted) {
      return;
    }
    long[] keys = new long[size];
    for (int i = 0; i < size; i++) {
      keys[i] = ((long) tokenIds[i] << 32) | (Float.floatToRawIntBits(logits[i]) & 0xffffffffL);
    }
    Arrays.sort(keys);
    for (int i = 0; i < size; i++) {
      tokenIds[i] = (int) (keys[i] >>> 32);
      logits[i] = Float.intBitsToFloat((int) keys[i]);
    }
    sorted = true;
  }
}
