package dev.owlery.engine.kernel;

/**
 * The keys and values one attention call reads, by kv head and key position, handed over as float32
 * rows of {@code headDim} (a KV cache widens what it stores). Reads may come from several threads at
 * once; nothing is written while an attention call runs.
 */
public interface KeyValueRows {

  /** Copies the keys of {@code kvHead} at positions {@code [from, from + count)} into {@code dst} as {@code count} rows of headDim. */
  void readKeys(int kvHead, int from, int count, float[] dst, int dstOffset);

  /** Copies the values of {@code kvHead} at positions {@code [from, from + count)} into {@code dst} as {@code count} rows of headDim. */
  void readValues(int kvHead, int from, int count, float[] dst, int dstOffset);
}
