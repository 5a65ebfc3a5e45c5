package dev.owlery.engine.kernel;

import dev.owlery.engine.tensor.Matrix;
import java.util.function.IntConsumer;

/**
 * Kernels that pass every call to {@link #delegate()}: kernel sets that replace some operations
 * extend it (oneDNN's, a test's reference), and so do the benchmarks, to time some calls or to
 * switch kernel sets under a loaded model.
 */
public abstract class ForwardingKernels implements Kernels {

  /** The kernels the next call goes to. */
  protected abstract Kernels delegate();

  @Override
  public void matmul(Matrix w, float[] x, int xOffset, float[] out, int outOffset, int numTokens) {
    delegate().matmul(w, x, xOffset, out, outOffset, numTokens);
  }

  @Override
  public void rmsNorm(float[] x, int xOffset, Matrix weight, float eps, float[] out, int outOffset, int size) {
    delegate().rmsNorm(x, xOffset, weight, eps, out, outOffset, size);
  }

  @Override
  public void layerNorm(float[] x, int xOffset, Matrix weight, Matrix bias, float eps, float[] out, int outOffset,
      int numTokens, int size) {
    delegate().layerNorm(x, xOffset, weight, bias, eps, out, outOffset, numTokens, size);
  }

  @Override
  public void siluMul(float[] gate, int gateOffset, float[] up, int upOffset, float[] out, int outOffset, int size) {
    delegate().siluMul(gate, gateOffset, up, upOffset, out, outOffset, size);
  }

  @Override
  public void quickGelu(float[] x, int offset, int size) {
    delegate().quickGelu(x, offset, size);
  }

  @Override
  public void softmax(float[] x, int offset, int size) {
    delegate().softmax(x, offset, size);
  }

  @Override
  public float dot(float[] a, int aOffset, float[] b, int bOffset, int size) {
    return delegate().dot(a, aOffset, b, bOffset, size);
  }

  @Override
  public void axpy(float alpha, float[] x, int xOffset, float[] y, int yOffset, int size) {
    delegate().axpy(alpha, x, xOffset, y, yOffset, size);
  }

  @Override
  public void attention(float[] q, int qOffset, KeyValueRows kv, AttentionShape shape, AttentionMask mask,
      int numQueries, int numKeys, float[] out, int outOffset) {
    delegate().attention(q, qOffset, kv, shape, mask, numQueries, numKeys, out, outOffset);
  }

  @Override
  public void addBias(float[] x, int xOffset, Matrix bias, int numTokens, int size) {
    delegate().addBias(x, xOffset, bias, numTokens, size);
  }

  @Override
  public void forEachRow(int numRows, IntConsumer row) {
    delegate().forEachRow(numRows, row);
  }

  @Override
  public String name() {
    return delegate().name();
  }
}
