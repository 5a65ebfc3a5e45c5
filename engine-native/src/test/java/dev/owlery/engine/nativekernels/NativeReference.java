package dev.owlery.engine.nativekernels;

import dev.owlery.engine.tensor.DType;
import dev.owlery.engine.tensor.Matrix;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/** The native Q8_0 kernels' arithmetic restated in Java, operation for operation (owlery_cpu.c's header). */
final class NativeReference {

  private static final ValueLayout.OfShort HALF = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  private NativeReference() {}

  /**
   * The several-token kernels' arithmetic (AMX and VNNI alike): {@code out[t * rows + r]}, per block
   * the exact int sum of the row's 32 weights (Q8_0's int8, Q4_0's q - 8) times the token's 32 int8,
   * times (token scale * row scale), added by FMA block after block; {@code xq} and {@code xd} hold
   * the tokens' quantized activations and scales one after another.
   */
  static float[] blockMatmul(Matrix w, byte[] xq, float[] xd, int tokens) {
    MemorySegment data = w.data();
    int blocks = w.cols() / 32;
    float[] out = new float[tokens * w.rows()];
    for (int t = 0; t < tokens; t++) {
      for (int r = 0; r < w.rows(); r++) {
        float acc = 0f;
        for (int b = 0; b < blocks; b++) {
          long block = w.rowByteOffset(r) + (long) w.dtype().blockBytes() * b;
          int sum = 0;
          for (int i = 0; i < 32; i++) {
            sum += weight(data, w.dtype(), block, i) * xq[t * w.cols() + 32 * b + i];
          }
          float scale = xd[t * blocks + b] * Float.float16ToFloat(data.get(HALF, block));
          acc = Math.fma((float) sum, scale, acc);
        }
        out[t * w.rows() + r] = acc;
      }
    }
    return out;
  }

  /** Activations to Q8_0 as {@link Q8Activations} describes, one block of 32 after another. */
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

  /** Every row of the Q8_0 or Q4_0 matrix {@code w} times the quantized activations. */
  static float[] blockMatvec(Matrix w, byte[] xq, float[] xd) {
    if (w.dtype() != DType.Q8_0 && w.dtype() != DType.Q4_0) {
      throw new IllegalArgumentException("not Q8_0 or Q4_0: " + w.dtype());
    }
    MemorySegment data = w.data();
    float[] out = new float[w.rows()];
    for (int r = 0; r < w.rows(); r++) {
      // Q8_0: eight lanes; Q4_0: eight for the even blocks and eight for the odd ones, added at the end
      boolean q4 = w.dtype() == DType.Q4_0;
      float[][] sets = new float[2][8];
      for (int b = 0; b < w.cols() / 32; b++) {
        long block = w.rowByteOffset(r) + (long) w.dtype().blockBytes() * b;
        float d = Float.float16ToFloat(data.get(HALF, block)) * xd[b];
        float[] set = sets[q4 ? b % 2 : 0];
        for (int lane = 0; lane < 8; lane++) {
          int sum = 0;
          for (int i = 4 * lane; i < 4 * lane + 4; i++) {
            sum += weight(data, w.dtype(), block, i) * xq[32 * b + i];
          }
          set[lane] = Math.fma((float) sum, d, set[lane]);
        }
      }
      float[] lanes = sets[0];
      if (q4) {
        for (int lane = 0; lane < 8; lane++) {
          lanes[lane] += sets[1][lane];
        }
      }
      float h0 = lanes[0] + lanes[4];
      float h1 = lanes[1] + lanes[5];
      float h2 = lanes[2] + lanes[6];
      float h3 = lanes[3] + lanes[7];
      out[r] = (h0 + h2) + (h1 + h3);
    }
    return out;
  }

  /** Weight i of the block: Q8_0's int8, or Q4_0's nibble minus 8 (byte j holds weights j and 16 + j). */
  private static int weight(MemorySegment data, DType dtype, long block, int i) {
    if (dtype == DType.Q8_0) {
      return data.get(ValueLayout.JAVA_BYTE, block + 2 + i);
    }
    int packed = data.get(ValueLayout.JAVA_BYTE, block + 2 + i % 16) & 0xff;
    return (i < 16 ? packed & 0x0f : packed >>> 4) - 8;
  }
}
