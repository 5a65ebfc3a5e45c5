package dev.owlery.engine.kv;

import dev.owlery.engine.kernel.KeyValueRows;

/**
 * One sequence's cached keys (after RoPE) and values for the kv heads of one tensor-parallel rank,
 * every layer, stored in its {@link KvCacheDtype} and read back as float32 rows. Element positions
 * follow {@link #index}; a paged cache implements it through its block table.
 *
 * <p>Protocol of a forward step over {@code numTokens} new positions starting at {@link #length()}:
 * every layer {@link #write}s its keys and values for those positions and reads positions
 * {@code [0, position]} through {@link #layer}; then the caller commits them with {@link #advance}.
 * Not thread-safe: one rank's thread uses it.
 */
public interface KvCache {

  int numLayers();

  /** Kv heads held here (this rank's share). */
  int numKvHeads();

  int headDim();

  /** Positions this cache can hold. */
  int capacity();

  /** Positions committed so far; the next step's first position. */
  int length();

  /** How keys and values are stored. */
  KvCacheDtype dtype();

  /**
   * Stores {@code headDim} floats of {@code key} and of {@code value} (rounded to {@link #dtype()})
   * as {@code kvHead}'s key and value at {@code position} of {@code layer}.
   */
  void write(int layer, int position, int kvHead, float[] key, int keyOffset, float[] value, int valueOffset);

  /** {@code layer}'s keys and values by kv head and position, for attention (made once, not per call). */
  KeyValueRows layer(int layer);

  /** Element index of {@code kvHead}'s vector at {@code position} in a layer's key or value storage. */
  int index(int position, int kvHead);

  /** Commits {@code numTokens} positions written by the step that just ran. */
  void advance(int numTokens);

  /** Forgets every position from {@code length} on (e.g. to reuse the cache for a new prompt). */
  void truncate(int length);
}
