package dev.owlery.engine.kernel;

import dev.owlery.engine.tensor.Matrix;

/** The reference kernels: plain loops, one thread, written to be read against the spec. */
public final class ScalarKernels implements Kernels {

  /** The slope of CLIP's quick GELU, {@code x * sigmoid(1.702 x)}. */
  static final float QUICK_GELU_SLOPE = 1.702f;

  @Override
  public void matmul(Matrix w, float[] x, int xOffset, float[] out, int outOffset, int numTokens) {
    int rows = w.rows();
    int cols = w.cols();
    float[] row = new float[cols];
    for (int r = 0; r < rows; r++) {
      w.widenRow(r, row);
      for (int t = 0; t < numTokens; t++) {
        int xRow = xOffset + t * cols;
        float sum = 0f;
        for (int c = 0; c < cols; c++) {
          sum += row[c] * x[xRow + c];
        }
        out[outOffset + t * rows + r] = sum;
      }
    }
  }

  @Override
  public void rmsNorm(float[] x, int xOffset, Matrix weight, float eps, float[] out, int outOffset, int size) {
    float sumSquares = 0f;
    for (int i = 0; i < size; i++) {
      float v = x[xOffset + i];
      sumSquares += v * v;
    }
    float scale = (float) (1.0 / Math.sqrt(sumSquares / size + eps));
    for (int i = 0; i < size; i++) {
      float normalised = x[xOffset + i] * scale;
      out[outOffset + i] = weight.get(0, i) * normalised;
    }
  }

  @Override
  public void layerNorm(float[] x, int xOffset, Matrix weight, Matrix bias, float eps, float[] out, int outOffset,
      int numTokens, int size) {
    for (int t = 0; t < numTokens; t++) {
      int in = xOffset + t * size;
      float mean = 0f;
      for (int i = 0; i < size; i++) {
        mean += x[in + i];
      }
      mean /= size;
      float variance = 0f;
      for (int i = 0; i < size; i++) {
        float d = x[in + i] - mean;
        variance += d * d;
      }
      variance /= size;
      float scale = (float) (1.0 / Math.sqrt(variance + eps));
      for (int i = 0; i < size; i++) {
        out[outOffset + t * size + i] = (x[in + i] - mean) * scale * weight.get(0, i) + bias.get(0, i);
      }
    }
  }

  @Override
  public void siluMul(float[] gate, int gateOffset, float[] up, int upOffset, float[] out, int outOffset, int size) {
    for (int i = 0; i < size; i++) {
      float g = gate[gateOffset + i];
      float silu = g / (1f + (float) Math.exp(-g));
      out[outOffset + i] = silu * up[upOffset + i];
    }
  }

  @Override
  public void quickGelu(float[] x, int offset, int size) {
    for (int i = offset; i < offset + size; i++) {
      float v = x[i];
      float sigmoid = 1f / (1f + (float) Math.exp(-(QUICK_GELU_SLOPE * v)));
      x[i] = v * sigmoid;
    }
  }

  @Override
  public void softmax(float[] x, int offset, int size) {
    float max = Float.NEGATIVE_INFINITY;
    for (int i = 0; i < size; i++) {
      max = Math.max(max, x[offset + i]);
    }
    float sum = 0f;
    for (int i = 0; i < size; i++) {
      float e = (float) Math.exp(x[offset + i] - max);
      x[offset + i] = e;
      sum += e;
    }
    for (int i = 0; i < size; i++) {
      x[offset + i] /= sum;
    }
  }

  @Override
  public float dot(float[] a, int aOffset, float[] b, int bOffset, int size) {
    float sum = 0f;
    for (int i = 0; i < size; i++) {
      sum += a[aOffset + i] * b[bOffset + i];
    }
    return sum;
  }

  @Override
  public void axpy(float alpha, float[] x, int xOffset, float[] y, int yOffset, int size) {
    for (int i = 0; i < size; i++) {
      y[yOffset + i] += alpha * x[xOffset + i];
    }
  }

  /** One query head at a time: every score, the softmax over them, then the weighted sum of values. */
  @Override
  public void attention(float[] q, int qOffset, KeyValueRows kv, AttentionShape shape, AttentionMask mask, int numQueries,
      int numKeys, float[] out, int outOffset) {
    AttentionShape.checkCall(mask, numQueries, numKeys);
    long start = System.nanoTime();
    int headDim = shape.headDim();
    float[] key = new float[headDim];
    float[] value = new float[headDim];
    float[] scores = new float[numKeys];
    for (int i = 0; i < numQueries; i++) {
      int visible = AttentionShape.visibleKeys(mask, i, numQueries, numKeys);
      for (int h = 0; h < shape.numHeads(); h++) {
        int kvHead = h / shape.groupSize();
        int qRow = qOffset + i * shape.rowWidth() + h * headDim;
        int outRow = outOffset + i * shape.rowWidth() + h * headDim;
        for (int j = 0; j < visible; j++) {
          kv.readKeys(kvHead, j, 1, key, 0);
          scores[j] = shape.scale() * dot(q, qRow, key, 0, headDim);
        }
        softmax(scores, 0, visible);
        java.util.Arrays.fill(out, outRow, outRow + headDim, 0f);
        for (int j = 0; j < visible; j++) {
          kv.readValues(kvHead, j, 1, value, 0);
          axpy(scores[j], value, 0, out, outRow, headDim);
        }
      }
    }
    AttentionTime.add(System.nanoTime() - start);
  }

  @Override
  public void addBias(float[] x, int xOffset, Matrix bias, int numTokens, int size) {
    for (int t = 0; t < numTokens; t++) {
      for (int i = 0; i < size; i++) {
        x[xOffset + t * size + i] += bias.get(0, i);
      }
    }
  }

  @Override
  public String name() {
    return "scalar";
  }
}
