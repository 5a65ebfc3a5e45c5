package dev.owlery.engine.cuda.check;

import dev.owlery.engine.cuda.runtime.Device;
import dev.owlery.engine.cuda.runtime.DevicePointer;
import dev.owlery.engine.tensor.DType;
import dev.owlery.engine.tensor.Matrix;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.SplittableRandom;

/**
 * A random {@code rows x cols} weight matrix in F32, F16 or BF16, held as the bits the device gets
 * and viewed as the engine's {@link Matrix} for the CPU reference.
 */
record Weights(DType dtype, int rows, int cols, short[] halves, float[] floats) {

  /** Entries drawn from N(0, sigma^2), rounded to nearest even into {@code dtype}. */
  static Weights random(DType dtype, int rows, int cols, double sigma, SplittableRandom random) {
    int n = Math.multiplyExact(rows, cols);
    float[] values = new float[n];
    for (int i = 0; i < n; i++) {
      values[i] = (float) (Gaussian.next(random) * sigma);
    }
    return switch (dtype) {
      case F32 -> new Weights(dtype, rows, cols, null, values);
      case F16 -> {
        short[] bits = new short[n];
        for (int i = 0; i < n; i++) {
          bits[i] = Float.floatToFloat16(values[i]);
        }
        yield new Weights(dtype, rows, cols, bits, null);
      }
      case BF16 -> {
        short[] bits = new short[n];
        for (int i = 0; i < n; i++) {
          int b = Float.floatToRawIntBits(values[i]);
          bits[i] = (short) ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16); // round to nearest even (finite values)
        }
        yield new Weights(dtype, rows, cols, bits, null);
      }
      default -> throw new IllegalArgumentException("the check makes F32, F16 or BF16 weights, not " + dtype);
    };
  }

  /** The engine's view of these weights, little-endian as a checkpoint stores them. */
  Matrix matrix() {
    ByteBuffer bytes = ByteBuffer.allocate((int) dtype.bytesOf((long) rows * cols)).order(ByteOrder.LITTLE_ENDIAN);
    if (floats != null) {
      bytes.asFloatBuffer().put(floats);
    } else {
      bytes.asShortBuffer().put(halves);
    }
    return new Matrix("check." + dtype, MemorySegment.ofArray(bytes.array()), dtype, rows, cols, cols, 0);
  }

  DevicePointer upload(Device gpu) {
    return floats != null ? gpu.upload(floats) : gpu.upload(halves);
  }
}
