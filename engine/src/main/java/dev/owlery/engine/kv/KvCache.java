package dev.owlery.engine.kv;

/**
 * One sequence's cached keys (after RoPE) and values for the kv heads of one tensor-parallel rank,
 * every layer. Storage is exposed as float arrays plus an index function so that attention reads
 * it in place; a paged cache implements {@link #index} through its block table.
 *
 * <p>Protocol of a forward step over {@code numTokens} new positions starting at {@link #length()}:
 * every layer writes its keys and values at {@code index(position, kvHead)} for those positions
 * and reads positions {@code [0, position]}; then the caller commits them with {@link #advance}.
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

  /** Key storage of {@code layer}, addressed through {@link #index}. */
  float[] keys(int layer);

  /** Value storage of {@code layer}, addressed through {@link #index}. */
  float[] values(int layer);

  /** Index in {@link #keys}/{@link #values} of element 0 of {@code kvHead}'s vector at {@code position}. */
  int index(int position, int kvHead);

  /** Commits {@code numTokens} positions written by the step that just ran. */
  void advance(int numTokens);

  /** Forgets every position from {@code length} on (e.g. to reuse the cache for a new prompt). */
  void truncate(int length);
}
