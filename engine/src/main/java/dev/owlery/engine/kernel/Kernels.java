package dev.owlery.engine.kernel;

import dev.owlery.engine.tensor.Matrix;
import java.util.function.IntConsumer;

/**
 * The named numeric operations model code calls. Activations are row-major float arrays with an
 * element offset; weights are {@link Matrix} views read in place. Every implementation must agree
 * with {@link ScalarKernels}, the reference written for clarity; tests hold the fast ones to it.
 *
 * <p>Implementations are thread-safe; a call may use several threads internally but returns only
 * when its output is complete.
 */
public interface Kernels {

  /**
   * {@code out[t, r] = sum_c w[r, c] * x[t, c]} for {@code t < numTokens}, {@code r < w.rows()}:
   * x holds {@code numTokens} rows of {@code w.cols()} floats from {@code xOffset}; out receives
   * {@code numTokens} rows of {@code w.rows()} floats from {@code outOffset}. Accumulates in fp32.
   */
  void matmul(Matrix w, float[] x, int xOffset, float[] out, int outOffset, int numTokens);

  /**
   * RMSNorm of one row: {@code out[i] = w[i] * x[i] / sqrt(mean(x^2) + eps)} over {@code size}
   * elements; {@code weight} is a 1 x size matrix. The normalised value is rounded to fp32 before
   * the weight multiply, as transformers 4.31 does.
   */
  void rmsNorm(float[] x, int xOffset, Matrix weight, float eps, float[] out, int outOffset, int size);

  /**
   * LayerNorm of {@code numTokens} rows of {@code size} floats, each with its own mean and biased
   * variance, then the affine weight and bias (1 x size matrices); x and out must not alias.
   */
  void layerNorm(float[] x, int xOffset, Matrix weight, Matrix bias, float eps, float[] out, int outOffset,
      int numTokens, int size);

  /** {@code out[i] = silu(gate[i]) * up[i]}; out may alias gate. */
  void siluMul(float[] gate, int gateOffset, float[] up, int upOffset, float[] out, int outOffset, int size);

  /** CLIP's quick GELU in place: {@code x[i] = x[i] * sigmoid(1.702 * x[i])} for {@code size} floats from {@code offset}. */
  void quickGelu(float[] x, int offset, int size);

  /** In-place softmax of {@code size} floats from {@code offset}, max-subtracted, fp32. */
  void softmax(float[] x, int offset, int size);

  /** {@code sum_i a[i] * b[i]}. */
  float dot(float[] a, int aOffset, float[] b, int bOffset, int size);

  /** {@code y[i] += alpha * x[i]}. */
  void axpy(float alpha, float[] x, int xOffset, float[] y, int yOffset, int size);

  /**
   * Multi-head softmax attention of {@code numQueries} query rows over {@code numKeys} keys: for
   * query i and head h, {@code out[i, h] = sum_j softmax_j(scale * q[i, h] . k[g, j]) v[g, j]} over
   * the keys {@code mask} lets query i see, g being h's kv head ({@link AttentionShape}). {@code q}
   * and {@code out} hold {@code numQueries} rows of {@link AttentionShape#rowWidth()} floats from
   * their offsets. Accumulates in fp32; the call's wall time is added to {@link AttentionTime}.
   */
  void attention(float[] q, int qOffset, KeyValueRows kv, AttentionShape shape, AttentionMask mask, int numQueries,
      int numKeys, float[] out, int outOffset);

  /** Adds a 1 x size bias matrix to each of {@code numTokens} rows of {@code size} floats. */
  void addBias(float[] x, int xOffset, Matrix bias, int numTokens, int size);

  /**
   * {@code row.accept(t)} for every {@code t < numRows}, in any order, spread over the kernels'
   * threads where they have several: the per-token work of a prompt between its products (norms,
   * rotary embeddings, cache writes, copies), which on one thread kept the others waiting. The calls
   * must write disjoint data; kernels they call run on the calling thread alone. Default: in order,
   * on the calling thread.
   */
  default void forEachRow(int numRows, IntConsumer row) {
    for (int t = 0; t < numRows; t++) {
      row.accept(t);
    }
  }

  /** A short name for logs and benchmarks ("scalar", "vector-avx512"). */
  String name();
}
