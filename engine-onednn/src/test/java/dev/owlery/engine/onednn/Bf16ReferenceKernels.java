package dev.owlery.engine.onednn;

import dev.owlery.engine.kernel.AttentionMask;
import dev.owlery.engine.kernel.AttentionShape;
import dev.owlery.engine.kernel.Kernels;
import dev.owlery.engine.kernel.KeyValueRows;
import dev.owlery.engine.kernel.ScalarKernels;
import dev.owlery.engine.tensor.Matrix;

/**
 * The scalar reference with {@link OneDnnKernels}'s arithmetic written out: a matmul of at least
 * {@link OneDnnKernels#MIN_TOKENS} tokens multiplies the bfloat16-rounded weights and activations
 * and sums the products exactly (in double), then rounds the sum to float32.
 */
final class Bf16ReferenceKernels implements Kernels {

  private final ScalarKernels scalar = new ScalarKernels();

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

  @Override
  public void rmsNorm(float[] x, int xOffset, Matrix weight, float eps, float[] out, int outOffset, int size) {
    scalar.rmsNorm(x, xOffset, weight, eps, out, outOffset, size);
  }

  @Override
  public void layerNorm(float[] x, int xOffset, Matrix weight, Matrix bias, float eps, float[] out, int outOffset,
      int numTokens, int size) {
    scalar.layerNorm(x, xOffset, weight, bias, eps, out, outOffset, numTokens, size);
  }

  @Override
  public void siluMul(float[] gate, int gateOffset, float[] up, int upOffset, float[] out, int outOffset, int size) {
    scalar.siluMul(gate, gateOffset, up, upOffset, out, outOffset, size);
  }

  @Override
  public void quickGelu(float[] x, int offset, int size) {
    scalar.quickGelu(x, offset, size);
  }

  @Override
  public void softmax(float[] x, int offset, int size) {
    scalar.softmax(x, offset, size);
  }

  @Override
  public float dot(float[] a, int aOffset, float[] b, int bOffset, int size) {
    return scalar.dot(a, aOffset, b, bOffset, size);
  }

  @Override
  public void axpy(float alpha, float[] x, int xOffset, float[] y, int yOffset, int size) {
    scalar.axpy(alpha, x, xOffset, y, yOffset, size);
  }

  @Override
  public void attention(float[] q, int qOffset, KeyValueRows kv, AttentionShape shape, AttentionMask mask,
      int numQueries, int numKeys, float[] out, int outOffset) {
    scalar.attention(q, qOffset, kv, shape, mask, numQueries, numKeys, out, outOffset);
  }

  @Override
  public void addBias(float[] x, int xOffset, Matrix bias, int numTokens, int size) {
    scalar.addBias(x, xOffset, bias, numTokens, size);
  }

  @Override
  public String name() {
    return "bf16-reference";
  }
}
