package dev.owlery.engine.nativekernels;

/**
 * Activations quantized to Q8_0 for the int8 dot product, as llama.cpp quantizes them on x86
 * ({@code quantize_row_q8_0}, its AVX path): per block of 32, {@code d = max|x| / 127} rounded to
 * F16 (kept here as the float it rounds to), {@code q = round(x * (127 / max|x|))} to nearest, ties
 * to even, so every q is in [-127, 127]. Weights are quantized once at load time with llama.cpp's
 * reference rounding instead ({@code WeightFormat}); that difference is llama.cpp's too.
 */
final class Q8Activations {

  private byte[] q = new byte[0];
  private float[] d = new float[0];

  /** The int8 values of the last {@link #quantize} call (and stale bytes past them). */
  byte[] values() {
    return q;
  }

  /** The block scales of the last {@link #quantize} call. */
  float[] scales() {
    return d;
  }

  /** Quantizes {@code x[offset, offset + size)}, {@code size} a multiple of 32. */
  void quantize(float[] x, int offset, int size) {
    if (q.length < size) {
      q = new byte[size];
      d = new float[size / 32];
    }
    quantize(x, offset, size, q, d);
  }

  static void quantize(float[] x, int offset, int size, byte[] q, float[] d) {
    for (int b = 0; b < size / 32; b++) {
      int from = offset + 32 * b;
      float amax = 0f;
      for (int j = 0; j < 32; j++) {
        amax = Math.max(amax, Math.abs(x[from + j]));
      }
      d[b] = Float.float16ToFloat(Float.floatToFloat16(amax / 127f));
      float id = amax != 0f ? 127f / amax : 0f;
      for (int j = 0; j < 32; j++) {
        q[32 * b + j] = (byte) Math.rint(x[from + j] * id);
      }
    }
  }
}
