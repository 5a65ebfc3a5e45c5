package dev.owlery.engine.kv;

import dev.owlery.engine.kernel.KeyValueRows;

/** One layer of a {@link KvCache} as attention reads it: position by position through the cache's index. */
final class LayerRows implements KeyValueRows {

  private final KvCache cache;
  private final KvStorage storage;
  private final int layer;

  LayerRows(KvCache cache, KvStorage storage, int layer) {
    this.cache = cache;
    this.storage = storage;
    this.layer = layer;
  }

  /** One view per layer of {@code cache}, made once with the cache. */
  static LayerRows[] of(KvCache cache, KvStorage storage) {
    LayerRows[] layers = new LayerRows[storage.numLayers()];
    for (int i = 0; i < layers.length; i++) {
      layers[i] = new LayerRows(cache, storage, i);
    }
    return layers;
  }

  @Override
  public void readKeys(int kvHead, int from, int count, float[] dst, int dstOffset) {
    int headDim = cache.headDim();
    for (int k = 0; k < count; k++) {
      storage.loadKeys(layer, cache.index(from + k, kvHead), dst, dstOffset + k * headDim, headDim);
    }
  }

  @Override
  public void readValues(int kvHead, int from, int count, float[] dst, int dstOffset) {
    int headDim = cache.headDim();
    for (int k = 0; k < count; k++) {
      storage.loadValues(layer, cache.index(from + k, kvHead), dst, dstOffset + k * headDim, headDim);
    }
  }
}
