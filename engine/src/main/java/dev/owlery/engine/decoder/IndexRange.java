package dev.owlery.engine.decoder;

/** The indexes {@code [start, end)} of a rank's share of some dimension (heads, features, vocabulary ids). */
public record IndexRange(int start, int end) {

  public IndexRange {
    if (start < 0 || end < start) {
      throw new IllegalArgumentException("index range [%d, %d) is not a range".formatted(start, end));
    }
  }

  public int size() {
    return end - start;
  }

  /** This range in units {@code width} times finer: heads to their features, e.g. [h0, h1) to [h0 * headDim, h1 * headDim). */
  public IndexRange times(int width) {
    return new IndexRange(Math.multiplyExact(start, width), Math.multiplyExact(end, width));
  }
}
