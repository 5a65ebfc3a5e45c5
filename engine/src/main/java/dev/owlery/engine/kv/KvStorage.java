package dev.owlery.engine.kv;

/**
 * The arrays behind a KV cache: per layer one array of keys and one of values, indexed by element
 * as the cache's layout says, in the cache's {@link KvCacheDtype}. Stores round float32 to that
 * dtype; loads widen back to float32.
 */
sealed interface KvStorage permits KvStorage.F32, KvStorage.F16 {

  /** Storage of {@code numLayers} layers of {@code perLayer} elements each for keys and for values. */
  static KvStorage allocate(KvCacheDtype dtype, int numLayers, int perLayer) {
    return switch (dtype) {
      case F32 -> new F32(new float[numLayers][perLayer], new float[numLayers][perLayer]);
      case F16 -> new F16(new short[numLayers][perLayer], new short[numLayers][perLayer]);
    };
  }

  int numLayers();

  /** Stores {@code size} floats of {@code key} and of {@code value} at element {@code index} of {@code layer}. */
  void store(int layer, int index, float[] key, int keyOffset, float[] value, int valueOffset, int size);

  /** Widens {@code size} keys of {@code layer} from element {@code index} into {@code dst}. */
  void loadKeys(int layer, int index, float[] dst, int dstOffset, int size);

  /** Widens {@code size} values of {@code layer} from element {@code index} into {@code dst}. */
  void loadValues(int layer, int index, float[] dst, int dstOffset, int size);

  /** float32 storage: stores and loads are copies. */
  record F32(float[][] keys, float[][] values) implements KvStorage {

    @Override
    public int numLayers() {
      return keys.length;
    }

    @Override
    public void store(int layer, int index, float[] key, int keyOffset, float[] value, int valueOffset, int size) {
      System.arraycopy(key, keyOffset, keys[layer], index, size);
      System.arraycopy(value, valueOffset, values[layer], index, size);
    }

    @Override
    public void loadKeys(int layer, int index, float[] dst, int dstOffset, int size) {
      System.arraycopy(keys[layer], index, dst, dstOffset, size);
    }

    @Override
    public void loadValues(int layer, int index, float[] dst, int dstOffset, int size) {
      System.arraycopy(values[layer], index, dst, dstOffset, size);
    }
  }

  /**
   * Half-precision storage, rounded to nearest even by {@link Float#floatToFloat16}. A finite
   * element beyond F16's range (65,504) fails the store rather than caching an infinity.
   */
  record F16(short[][] keys, short[][] values) implements KvStorage {

    private static final float MAX_F16 = 65504f;

    @Override
    public int numLayers() {
      return keys.length;
    }

    @Override
    public void store(int layer, int index, float[] key, int keyOffset, float[] value, int valueOffset, int size) {
      round(key, keyOffset, keys[layer], index, size, "key", layer);
      round(value, valueOffset, values[layer], index, size, "value", layer);
    }

    private static void round(float[] src, int srcOffset, short[] dst, int dstIndex, int size, String what, int layer) {
      for (int i = 0; i < size; i++) {
        float x = src[srcOffset + i];
        if (Math.abs(x) > MAX_F16 && Float.isFinite(x)) {
          throw new IllegalStateException(("a %s of layer %d is %s, beyond the F16 KV cache's range of +-65504; "
              + "run with the float32 KV cache (--kv-cache-dtype f32)").formatted(what, layer, x));
        }
        dst[dstIndex + i] = Float.floatToFloat16(x);
      }
    }

    @Override
    public void loadKeys(int layer, int index, float[] dst, int dstOffset, int size) {
      widen(keys[layer], index, dst, dstOffset, size);
    }

    @Override
    public void loadValues(int layer, int index, float[] dst, int dstOffset, int size) {
      widen(values[layer], index, dst, dstOffset, size);
    }

    private static void widen(short[] src, int srcIndex, float[] dst, int dstOffset, int size) {
      for (int i = 0; i < size; i++) {
        dst[dstOffset + i] = Float.float16ToFloat(src[srcIndex + i]);
      }
    }
  }
}
