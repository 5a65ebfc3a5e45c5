package dev.owlery.engine.onednn;

import dev.owlery.engine.kernel.AttentionMask;
import dev.owlery.engine.kernel.AttentionShape;
import dev.owlery.engine.kernel.ForwardingKernels;
import dev.owlery.engine.kernel.Kernels;
import dev.owlery.engine.kernel.KeyValueRows;
import dev.owlery.engine.kernel.ScalarKernels;
import dev.owlery.engine.tensor.Matrix;

/**
 * The scalar reference with {@link OneDnnKernels}'s arithmetic written out: a matmul of at least
 * {@link OneDnnKernels#MIN_TOKENS} tokens multiplies the bfloat16-rounded weights and activations
 * and sums the products exactly (in double), then rounds the sum to float32.
 */
final class Bf16ReferenceKernels extends ForwardingKernels {

  private final ScalarKernels scalar = new ScalarKernels();

  @Override
  protected Kernels delegate() {
    return scalar;
  }

  @Override
  public void matmul(Matrix w, float[] x, int xOffset, float[] out, int outOffset, int numTokens) {
    if (numTokens < OneDnnKernels.MIN_TOKENS) {
      scalar.matmul(w, x, xOffset, out, outOffset, numTokens);
      return;
    }
    int cols = w.cols();
    float[][] rows = new float[w.rows()][cols];
    for (int r = 0; r < w.rows(); r++) {
      for (int c = 0; c < cols; c++) {
        rows[r][c] = bf16(w.get(r, c));
      }
    }
    float[] token = new float[cols];
    for (int t = 0; t < numTokens; t++) {
      for (int c = 0; c < cols; c++) {
        token[c] = bf16(x[xOffset + t * cols + c]);
      }
      for (int r = 0; r < w.rows(); r++) {
        double sum = 0;
        for (int c = 0; c < cols; c++) {
          sum += (double) rows[r][c] * token[c];
        }
        out[outOffset + t * w.rows() + r] = (float) sum;
      }
    }
  }

  private static float bf16(float value) {
    return Float.intBitsToFloat(Bf16.round(value) << 16);
  }

  /**
   * Without a mask and with at least {@link OneDnnKernels#MIN_TOKENS} queries and keys, as
   * {@link OneDnnAttention} defines it: scores the exact sums of bfloat16 products (then float32),
   * softmax in float32 by the reference, probabilities rounded to bfloat16, outputs the exact sums
   * of bfloat16 products; otherwise the scalar reference's.
   */
  @Override
  public void attention(float[] q, int qOffset, KeyValueRows kv, AttentionShape shape, AttentionMask mask,
      int numQueries, int numKeys, float[] out, int outOffset) {
    if (mask != AttentionMask.NONE || numQueries < OneDnnKernels.MIN_TOKENS || numKeys < OneDnnKernels.MIN_TOKENS) {
      scalar.attention(q, qOffset, kv, shape, mask, numQueries, numKeys, out, outOffset);
      return;
    }
    int d = shape.headDim();
    int width = shape.rowWidth();
    float[] keys = new float[numKeys * d];
    float[] values = new float[numKeys * d];
    float[] scores = new float[numKeys];
    for (int h = 0; h < shape.numHeads(); h++) {
      kv.readKeys(h / shape.groupSize(), 0, numKeys, keys, 0);
      kv.readValues(h / shape.groupSize(), 0, numKeys, values, 0);
      for (int i = 0; i < numQueries; i++) {
        int row = qOffset + i * width + h * d;
        for (int j = 0; j < numKeys; j++) {
          double sum = 0;
          for (int c = 0; c < d; c++) {
            sum += (double) bf16(q[row + c]) * bf16(keys[j * d + c]);
          }
          scores[j] = shape.scale() * (float) sum;
        }
        scalar.softmax(scores, 0, numKeys);
        for (int c = 0; c < d; c++) {
          double sum = 0;
          for (int j = 0; j < numKeys; j++) {
            sum += (double) bf16(scores[j]) * bf16(values[j * d + c]);
          }
          out[outOffset + i * width + h * d + c] = (float) sum;
        }
      }
    }
  }

  @Override
  public String name() {
    return "bf16-reference";
  }
}
