package dev.owlery.engine.vision;

import dev.owlery.engine.kernel.KeyValueRows;

/**
 * Keys and values that are rows of activations, for {@link dev.owlery.engine.kernel.Kernels#attention}:
 * head h's key at token j is {@code headDim} floats at {@code keys[j * rowStride + h * headStride + keyColumn]},
 * its value likewise in {@code values} from {@code valueColumn}.
 */
record ActivationKeyValues(float[] keys, float[] values, int rowStride, int headStride, int keyColumn, int valueColumn,
    int headDim) implements KeyValueRows {

  @Override
  public void readKeys(int kvHead, int from, int count, float[] dst, int dstOffset) {
    copyRows(keys, kvHead * headStride + keyColumn, from, count, dst, dstOffset);
  }

  @Override
  public void readValues(int kvHead, int from, int count, float[] dst, int dstOffset) {
    copyRows(values, kvHead * headStride + valueColumn, from, count, dst, dstOffset);
  }

  private void copyRows(float[] data, int column, int from, int count, float[] dst, int dstOffset) {
    for (int k = 0; k < count; k++) {
      System.arraycopy(data, (from + k) * rowStride + column, dst, dstOffset + k * headDim, headDim);
    }
  }
}
