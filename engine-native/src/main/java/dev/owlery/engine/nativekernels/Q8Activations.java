package dev.owlery.engine.nativekernels;

import java.lang.foreign.MemorySegment;
import java.util.Objects;

/**
 * Activations quantized to Q8_0 for the int8 dot product, as llama.cpp quantizes them on x86
 * ({@code quantize_row_q8_0}, its AVX path): per block of 32, {@code d = max|x| / 127} rounded to
 * F16 (kept here as the float it rounds to), {@code q = round(x * (127 / max|x|))} to nearest, ties
 * to even, so every q is in [-127, 127]. Weights are quantized once at load time with llama.cpp's
 * reference rounding instead ({@code WeightFormat}); that difference is llama.cpp's too. The
 * arithmetic runs in C ({@code owlery_quantize_q8_0}, AVX2: a prompt's activations are quantized
 * before every product, which in Java took about a tenth of a long Q8_0 prefill on the calling thread).
 */
final class Q8Activations {

  private final NativeCpuLibrary library;
  private byte[] q = new byte[0];
  private float[] d = new float[0];

  /** Buffers for quantizing with {@code library}'s {@code owlery_quantize_q8_0}. */
  Q8Activations(NativeCpuLibrary library) {
    this.library = library;
  }

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
    ensure(size);
    quantize(x, offset, size, 0);
  }

  /** Room for {@code size} values (a multiple of 32) and their scales; the values held may be lost. */
  void ensure(int size) {
    if (size % 32 != 0) {
      throw new IllegalArgumentException("Q8_0 quantizes whole blocks of 32; given " + size + " values");
    }
    if (q.length < size) {
      q = new byte[size];
      d = new float[size / 32];
    }
  }

  /**
   * Quantizes {@code x[offset, offset + size)} into values {@code [at, at + size)} and their
   * scales, within what {@link #ensure} made room for ({@code at} and {@code size} multiples of 32):
   * threads may quantize disjoint ranges at once.
   */
  void quantize(float[] x, int offset, int size, int at) {
    Objects.checkFromIndexSize(offset, size, x.length);
    Objects.checkFromIndexSize(at, size, q.length);
    if (size % 32 != 0 || at % 32 != 0) {
      throw new IllegalArgumentException("Q8_0 quantizes whole blocks of 32; given " + size + " values at " + at);
    }
    library.quantize(MemorySegment.ofArray(x).asSlice((long) offset * Float.BYTES), size / 32,
        MemorySegment.ofArray(q).asSlice(at), MemorySegment.ofArray(d).asSlice((long) at / 32 * Float.BYTES));
  }
}
