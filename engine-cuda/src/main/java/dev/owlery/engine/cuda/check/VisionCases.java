package dev.owlery.engine.cuda.check;

import dev.owlery.engine.cuda.ptx.PtxKernel;
import dev.owlery.engine.cuda.ptx.PtxKernels;
import dev.owlery.engine.cuda.runtime.Device;
import dev.owlery.engine.cuda.runtime.DevicePointer;
import dev.owlery.engine.kernel.AttentionMask;
import dev.owlery.engine.kernel.AttentionShape;
import dev.owlery.engine.kernel.KeyValueRows;
import dev.owlery.engine.kernel.ScalarKernels;
import dev.owlery.engine.tensor.DType;
import dev.owlery.engine.tensor.Matrix;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/** The cases of vision.cu: LayerNorm, the table add (biases, positions), QuickGELU and unmasked attention. */
final class VisionCases {

  private VisionCases() {}

  private static int strideGrid(PtxKernel kernel, long n) {
    return (int) Math.min(1024, Math.max(1, (n + kernel.blockSize() - 1) / kernel.blockSize()));
  }

  private static float[] magnitudes(float[] values) {
    float[] scale = new float[values.length];
    for (int i = 0; i < values.length; i++) {
      scale[i] = Math.abs(values[i]);
    }
    return scale;
  }

  static Matrix f32Row(String name, float[] values) {
    ByteBuffer bytes = ByteBuffer.allocate(4 * values.length).order(ByteOrder.LITTLE_ENDIAN);
    bytes.asFloatBuffer().put(values);
    return new Matrix(name, MemorySegment.ofArray(bytes.array()), DType.F32, 1, values.length, values.length, 0);
  }

  /** LayerNorm of each row against {@link ScalarKernels#layerNorm}, the reference the vector kernels are held to. */
  record LayerNormCase(float[] weight, float[] bias, float eps, float[] x) implements KernelCase {

    int hidden() {
      return weight.length;
    }

    int numRows() {
      return x.length / hidden();
    }

    @Override
    public String kernel() {
      return PtxKernels.LAYER_NORM.name();
    }

    @Override
    public String sizes() {
      return "rows=%d hidden=%d".formatted(numRows(), hidden());
    }

    /**
     * The mean's and the variance's sums run in another order (float32, hidden terms each: hidden 2^-24
     * of the sum of magnitudes at worst), so the mean may move by hidden 2^-24 mean|x| and the scale by
     * half the variance's relative error; the value each is measured against (see {@link #expected()})
     * is {@code s |w| (|x - mean| + mean|x|) + |b|}, and 2 hidden 2^-24 of it bounds both plus the few
     * final roundings.
     */
    @Override
    public Tolerance tolerance() {
      return new Tolerance(0, 2.0 * hidden() * 0x1p-24 + 4 * 0x1p-24,
          "mean and variance summed in another order: 2 hidden 2^-24 of s|w|(|x - mean| + mean|x|) + |b|");
    }

    @Override
    public Expected expected() {
      int hidden = hidden();
      Matrix w = f32Row("check.layer_norm.weight", weight);
      Matrix b = f32Row("check.layer_norm.bias", bias);
      ScalarKernels kernels = new ScalarKernels();
      float[] out = new float[x.length];
      float[] scale = new float[x.length];
      for (int t = 0; t < numRows(); t++) {
        kernels.layerNorm(x, t * hidden, w, b, eps, out, t * hidden, 1, hidden);
        double mean = 0;
        double meanAbs = 0;
        for (int i = 0; i < hidden; i++) {
          mean += x[t * hidden + i];
          meanAbs += Math.abs(x[t * hidden + i]);
        }
        mean /= hidden;
        meanAbs /= hidden;
        double variance = 0;
        for (int i = 0; i < hidden; i++) {
          variance += (x[t * hidden + i] - mean) * (x[t * hidden + i] - mean);
        }
        double s = 1 / Math.sqrt(variance / hidden + eps);
        for (int i = 0; i < hidden; i++) {
          scale[t * hidden + i] = (float) (s * Math.abs(weight[i]) * (Math.abs(x[t * hidden + i] - mean) + meanAbs)
              + Math.abs(bias[i]));
        }
      }
      return new Expected(out, scale);
    }

    @Override
    public float[] runOn(Device gpu) {
      DevicePointer out = gpu.allocate(4L * x.length);
      gpu.launch(PtxKernels.LAYER_NORM, numRows(), 1, out, gpu.upload(x), gpu.upload(weight), gpu.upload(bias),
          hidden(), eps);
      return gpu.downloadFloats(out, x.length);
    }
  }

  /**
   * {@code x + table} repeated over x, against {@link ScalarKernels#addBias} with the table as one
   * bias row of {@code tableSize} (a bias over token rows, or a position table over image rows).
   */
  record AddTableCase(float[] x, float[] table) implements KernelCase {

    @Override
    public String kernel() {
      return PtxKernels.ADD_TABLE.name();
    }

    @Override
    public String sizes() {
      return "n=%d tableSize=%d".formatted(x.length, table.length);
    }

    @Override
    public Tolerance tolerance() {
      return Tolerance.exact("one rounded float32 add per element, as on the CPU");
    }

    @Override
    public Expected expected() {
      float[] out = x.clone();
      new ScalarKernels().addBias(out, 0, f32Row("check.table", table), x.length / table.length, table.length);
      return new Expected(out, magnitudes(out));
    }

    @Override
    public float[] runOn(Device gpu) {
      DevicePointer out = gpu.allocate(4L * x.length);
      gpu.launch(PtxKernels.ADD_TABLE, strideGrid(PtxKernels.ADD_TABLE, x.length), 1, out, gpu.upload(x),
          gpu.upload(table), x.length, table.length);
      return gpu.downloadFloats(out, x.length);
    }
  }

  /** {@code x sigmoid(1.702 x)} against {@link ScalarKernels#quickGelu}. */
  record QuickGeluCase(float[] x) implements KernelCase {

    @Override
    public String kernel() {
      return PtxKernels.QUICK_GELU.name();
    }

    @Override
    public String sizes() {
      return "n=" + x.length;
    }

    /** e^x by ex2.approx (about 2 ulp, plus the rounding of 1.702 x log2 e: |x| ulp) instead of Java's exp. */
    @Override
    public Tolerance tolerance() {
      return new Tolerance(1e-7, 1e-5, "e^(-1.702 x) by ex2.approx: about 2 ulp plus |x| ulp, times |out|");
    }

    @Override
    public Expected expected() {
      float[] out = x.clone();
      new ScalarKernels().quickGelu(out, 0, out.length);
      return new Expected(out, magnitudes(out));
    }

    @Override
    public float[] runOn(Device gpu) {
      DevicePointer data = gpu.upload(x);
      gpu.launch(PtxKernels.QUICK_GELU, strideGrid(PtxKernels.QUICK_GELU, x.length), 1, data, x.length);
      return gpu.downloadFloats(data, x.length);
    }
  }

  /**
   * A strided view of activations: element d of head h of row i of image img at {@code data[offset +
   * img * imageStride + i * rowStride + h * headStride + d]}.
   */
  record Rows(float[] data, int offset, int imageStride, int rowStride, int headStride) {

    float get(int img, int row, int head, int d) {
      return data[offset + img * imageStride + row * rowStride + head * headStride + d];
    }
  }

  /**
   * Unmasked attention of each image's query rows over its key rows against the engine's
   * {@link ScalarKernels#attention} with {@link AttentionMask#NONE}, as the ViT (q, k, v interleaved
   * per head in one fused row) and the abstractor (separate q, k, v) call it; with
   * {@code tensorCores}, {@code full_attention_f16} against the engine's attention of the same q, k, v
   * rounded to F16 (the kernel's inputs).
   */
  record FullAttentionCase(int numImages, int numQueries, int numKeys, int numHeads, int headDim, Rows q, Rows k,
      Rows v, boolean tensorCores) implements KernelCase {

    FullAttentionCase {
      if (k.imageStride() != v.imageStride() || k.rowStride() != v.rowStride() || k.headStride() != v.headStride()) {
        throw new IllegalArgumentException("keys and values share their strides in full_attention");
      }
    }

    PtxKernel entry() {
      return tensorCores ? PtxKernels.FULL_ATTENTION_F16 : PtxKernels.FULL_ATTENTION;
    }

    int rowsPerBlock() {
      return tensorCores ? PtxKernels.FULL_ATTENTION_F16_ROWS : PtxKernels.FULL_ATTENTION_ROWS;
    }

    /** An input element as the kernel reads it: rounded to F16 on tensor cores. */
    float input(Rows rows, int img, int row, int head, int d) {
      float value = rows.get(img, row, head, d);
      return tensorCores ? Float.float16ToFloat(Float.floatToFloat16(value)) : value;
    }

    @Override
    public String kernel() {
      return entry().name();
    }

    @Override
    public String sizes() {
      return "images=%d queries=%d keys=%d heads=%d headDim=%d%s".formatted(numImages, numQueries, numKeys, numHeads,
          headDim, q.data() == k.data() ? " fused-qkv" : "");
    }

    AttentionShape shape() {
      return new AttentionShape(numHeads, numHeads, headDim, (float) Math.pow(headDim, -0.5)); // as VisionEncoderLayer
    }

    /**
     * As {@link AttentionCase}: ex2.approx, online softmax and another summation order on outputs of
     * order 1. On tensor cores the softmax weights enter the second product rounded to F16 (2^-11 of
     * each, summed as rounded, so the output stays a convex combination): the output moves by about
     * 2^-11 of the values' spread {@code max_j v - min_j v}, which is then each element's scale; 2^-9 of it.
     */
    @Override
    public Tolerance tolerance() {
      return tensorCores
          ? new Tolerance(2e-5, 0x1p-9, "softmax weights rounded to F16: 2^-9 of the values' spread, ex2.approx")
          : new Tolerance(2e-5, 1e-4, "ex2.approx, online softmax and summation order on outputs of order 1");
    }

    @Override
    public Expected expected() {
      int width = numHeads * headDim;
      float[] out = new float[numImages * numQueries * width];
      float[] query = new float[numQueries * width];
      ScalarKernels kernels = new ScalarKernels();
      for (int img = 0; img < numImages; img++) {
        int image = img;
        for (int i = 0; i < numQueries; i++) {
          for (int h = 0; h < numHeads; h++) {
            for (int d = 0; d < headDim; d++) {
              query[i * width + h * headDim + d] = input(q, img, i, h, d);
            }
          }
        }
        KeyValueRows rows = new KeyValueRows() {
          @Override
          public void readKeys(int head, int from, int count, float[] dst, int dstOffset) {
            read(k, head, from, count, dst, dstOffset);
          }

          @Override
          public void readValues(int head, int from, int count, float[] dst, int dstOffset) {
            read(v, head, from, count, dst, dstOffset);
          }

          private void read(Rows source, int head, int from, int count, float[] dst, int dstOffset) {
            for (int j = 0; j < count; j++) {
              for (int d = 0; d < headDim; d++) {
                dst[dstOffset + j * headDim + d] = input(source, image, from + j, head, d);
              }
            }
          }
        };
        kernels.attention(query, 0, rows, shape(), AttentionMask.NONE, numQueries, numKeys, out,
            img * numQueries * width);
      }
      return new Expected(out, tensorCores ? spreads() : magnitudes(out));
    }

    /** Per output element, {@code max_j v - min_j v} over its image's keys at its head and dimension. */
    private float[] spreads() {
      int width = numHeads * headDim;
      float[] spread = new float[numImages * numQueries * width];
      for (int img = 0; img < numImages; img++) {
        for (int h = 0; h < numHeads; h++) {
          for (int d = 0; d < headDim; d++) {
            float lo = Float.POSITIVE_INFINITY;
            float hi = Float.NEGATIVE_INFINITY;
            for (int j = 0; j < numKeys; j++) {
              lo = Math.min(lo, input(v, img, j, h, d));
              hi = Math.max(hi, input(v, img, j, h, d));
            }
            for (int i = 0; i < numQueries; i++) {
              spread[(img * numQueries + i) * width + h * headDim + d] = hi - lo;
            }
          }
        }
      }
      return spread;
    }

    @Override
    public float[] runOn(Device gpu) {
      int width = numHeads * headDim;
      DevicePointer out = gpu.allocate(4L * numImages * numQueries * width);
      DevicePointer qData = gpu.upload(q.data());
      DevicePointer kData = k.data() == q.data() ? qData : gpu.upload(k.data());
      DevicePointer vData = v.data() == q.data() ? qData : v.data() == k.data() ? kData : gpu.upload(v.data());
      int tiles = (numQueries + rowsPerBlock() - 1) / rowsPerBlock();
      gpu.launch(entry(), numHeads, numImages * tiles, out, qData.plusWords(q.offset()),
          kData.plusWords(k.offset()), vData.plusWords(v.offset()), numQueries, numKeys, headDim, q.imageStride(),
          q.rowStride(), q.headStride(), k.imageStride(), k.rowStride(), k.headStride(), shape().scale());
      return gpu.downloadFloats(out, numImages * numQueries * width);
    }
  }
}
