package dev.owlery.engine.kv;

import dev.owlery.engine.kernel.KeyValueRows;

/**
 * A {@link KvCache} with one contiguous array per layer for keys and one for values, laid out
 * {@code [capacity, numKvHeads, headDim]} in the cache's dtype, allocated once for the sequence's
 * whole capacity.
 */
public final class ContiguousKvCache implements KvCache {

  private final int numKvHeads;
  private final int headDim;
  private final int capacity;
  private final KvStorage storage;
  private final LayerRows[] layers;
  private final KvCacheDtype dtype;
  private int length;

  public ContiguousKvCache(int numLayers, int numKvHeads, int headDim, int capacity, KvCacheDtype dtype) {
    if (numLayers < 1 || numKvHeads < 1 || headDim < 1 || capacity < 1) {
      throw new IllegalArgumentException("KV cache sizes must be >= 1: numLayers=%d numKvHeads=%d headDim=%d capacity=%d"
          .formatted(numLayers, numKvHeads, headDim, capacity));
    }
    int perLayer = Math.multiplyExact(Math.multiplyExact(capacity, numKvHeads), headDim);
    this.numKvHeads = numKvHeads;
    this.headDim = headDim;
    this.capacity = capacity;
    this.storage = KvStorage.allocate(dtype, numLayers, perLayer);
    this.dtype = dtype;
    this.layers = LayerRows.of(this, storage);
  }

  @Override
  public int numLayers() {
    return storage.numLayers();
  }

  @Override
  public KvCacheDtype dtype() {
    return dtype;
  }

  @Override
  public int numKvHeads() {
    return numKvHeads;
  }

  @Override
  public int headDim() {
    return headDim;
  }

  @Override
  public int capacity() {
    return capacity;
  }

  @Override
  public int length() {
    return length;
  }

  @Override
  public void write(int layer, int position, int kvHead, float[] key, int keyOffset, float[] value, int valueOffset) {
    storage.store(layer, index(position, kvHead), key, keyOffset, value, valueOffset, headDim);
  }

  @Override
  public KeyValueRows layer(int layer) {
    return layers[layer];
  }

  @Override
  public int index(int position, int kvHead) {
    return (position * numKvHeads + kvHead) * headDim;
  }

  @Override
  public void advance(int numTokens) {
    if (numTokens < 0 || length + numTokens > capacity) {
      throw new IllegalStateException("cannot advance the KV cache by %d: length %d, capacity %d"
          .formatted(numTokens, length, capacity));
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
