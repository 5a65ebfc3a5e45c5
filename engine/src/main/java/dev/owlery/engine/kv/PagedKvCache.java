package dev.owlery.engine.kv;

import dev.owlery.engine.kernel.KeyValueRows;
import java.util.Arrays;

/**
 * One sequence's {@link KvCache} in a {@link KvBlockPool}: position p lives in block
 * {@code blockTable[p / blockSize]} at offset {@code p % blockSize}. The table only grows; its owner
 * appends a block before a step writes past {@link #capacity()} and checks that no block is
 * appended to two caches.
 */
public final class PagedKvCache implements KvCache {

  private final KvBlockPool pool;
  private final LayerRows[] layers;
  private int[] blockTable = new int[4];
  private int numBlocks;
  private int length;

  PagedKvCache(KvBlockPool pool) {
    this.pool = pool;
    this.layers = LayerRows.of(this, pool.storage());
  }

  /** Appends {@code blockId} to the block table: positions {@code [capacity(), capacity() + blockSize)}. */
  public void appendBlock(int blockId) {
    if (blockId < 0 || blockId >= pool.numBlocks()) {
      throw new IllegalArgumentException("block id must be in [0, %d). Given: %d".formatted(pool.numBlocks(), blockId));
    }
    if (numBlocks == blockTable.length) {
      blockTable = Arrays.copyOf(blockTable, 2 * numBlocks); // doubles: a few times per sequence, not per token
    }
    blockTable[numBlocks++] = blockId;
  }

  /** Blocks in the table. */
  public int numBlocks() {
    return numBlocks;
  }

  /** The block holding positions {@code [i * blockSize, (i + 1) * blockSize)}. */
  public int blockId(int i) {
    if (i < 0 || i >= numBlocks) {
      throw new IndexOutOfBoundsException("block table index %d of %d".formatted(i, numBlocks));
    }
    return blockTable[i];
  }

  @Override
  public int numLayers() {
    return pool.numLayers();
  }

  @Override
  public int numKvHeads() {
    return pool.numKvHeads();
  }

  @Override
  public int headDim() {
    return pool.headDim();
  }

  /** Positions covered by the block table. */
  @Override
  public int capacity() {
    return numBlocks * pool.blockSize();
  }

  @Override
  public int length() {
    return length;
  }

  @Override
  public KvCacheDtype dtype() {
    return pool.dtype();
  }

  @Override
  public void write(int layer, int position, int kvHead, float[] key, int keyOffset, float[] value, int valueOffset) {
    pool.storage().store(layer, index(position, kvHead), key, keyOffset, value, valueOffset, pool.headDim());
  }

  @Override
  public KeyValueRows layer(int layer) {
    return layers[layer];
  }

  @Override
  public int index(int position, int kvHead) {
    int blockSize = pool.blockSize();
    return pool.index(blockTable[position / blockSize], position % blockSize, kvHead);
  }

  @Override
  public void advance(int numTokens) {
    if (numTokens < 0 || length + numTokens > capacity()) {
      throw new IllegalStateException("cannot advance the KV cache by %d: length %d, capacity %d"
          .formatted(numTokens, length, capacity()));
    }
    length += numTokens;
  }

  @Override
  public void truncate(int newLength) {
    if (newLength < 0 || newLength > length) {
      throw new IllegalArgumentException("cannot truncate the KV cache to %d: length is %d".formatted(newLength, length));
    }
    length = newLength;
  }
}
