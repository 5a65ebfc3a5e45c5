package dev.owlery.engine.cuda.check;

import dev.owlery.engine.cuda.forward.RopeTables;
import dev.owlery.engine.cuda.ptx.PtxKernel;
import dev.owlery.engine.cuda.ptx.PtxKernels;
import dev.owlery.engine.cuda.runtime.Device;
import dev.owlery.engine.cuda.runtime.DevicePointer;
import dev.owlery.engine.decoder.Modality;
import dev.owlery.engine.decoder.Multiway;
import dev.owlery.engine.decoder.RmsNorm;
import dev.owlery.engine.decoder.RotaryEmbedding;
import dev.owlery.engine.kernel.ScalarKernels;
import dev.owlery.engine.tensor.DType;
import dev.owlery.engine.tensor.Matrix;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/** The cases of elementwise.cu: embedding gather, RMSNorm (MAM) alone and after a residual add, RoPE, SiLU * up, residual add. */
final class ElementwiseCases {

  /** Grid of the grid-stride kernels: enough blocks to cover n once, capped (they loop past it). */
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

  private ElementwiseCases() {}

  /**
   * Embedding rows by token id against {@link Matrix#get}, the widening {@code Embedding.lookup} does
   * row by row (Embedding itself is only built from a checkpoint).
   */
  record EmbeddingCase(Weights table, int[] ids) implements KernelCase {

    @Override
    public String kernel() {
      return entry().name();
    }

    PtxKernel entry() {
      return switch (table.dtype()) {
        case F16 -> PtxKernels.EMBEDDING_F16;
        case BF16 -> PtxKernels.EMBEDDING_BF16;
        case F32 -> PtxKernels.EMBEDDING_F32;
        default -> throw new IllegalArgumentException("no embedding kernel for " + table.dtype());
      };
    }

    @Override
    public String sizes() {
      return "vocab=%d hidden=%d tokens=%d dtype=%s".formatted(table.rows(), table.cols(), ids.length, table.dtype());
    }

    @Override
    public Tolerance tolerance() {
      return Tolerance.exact("widening F16/BF16 to float32 is exact");
    }

    @Override
    public Expected expected() {
      Matrix w = table.matrix();
      int hidden = table.cols();
      float[] out = new float[ids.length * hidden];
      for (int t = 0; t < ids.length; t++) {
        for (int c = 0; c < hidden; c++) {
          out[t * hidden + c] = w.get(ids[t], c);
        }
      }
      return new Expected(out, magnitudes(out));
    }

    @Override
    public float[] runOn(Device gpu) {
      int hidden = table.cols();
      DevicePointer out = gpu.allocate(4L * ids.length * hidden);
      gpu.launch(entry(), ids.length, 1, out, table.upload(gpu), gpu.upload(ids), hidden, table.rows());
      return gpu.downloadFloats(out, ids.length * hidden);
    }
  }

  /**
   * RMSNorm of each row with the weight copy its modality picks, against the engine's {@link RmsNorm}
   * chosen through {@link Multiway} (one copy serves every modality when there is one).
   *
   * @param weights numModalities rows of hidden float32, text first
   * @param modality per row, 0 (text) or 1 (visual)
   */
  record RmsNormCase(int hidden, int numModalities, float[] weights, float eps, float[] x, int[] modality)
      implements KernelCase {

    @Override
    public String kernel() {
      return PtxKernels.RMS_NORM.name();
    }

    @Override
    public String sizes() {
      return "rows=%d hidden=%d modalities=%d".formatted(modality.length, hidden, numModalities);
    }

    /**
     * The sum of squares is added in another order (float32, hidden terms: hidden * 2^-24 relative at
     * worst), which moves the scale by half that; 2 hidden * 2^-24 of |out| bounds it.
     */
    @Override
    public Tolerance tolerance() {
      return new Tolerance(0, 2.0 * hidden * 0x1p-24, "sum of squares in another order: 2 hidden * 2^-24 * |out|");
    }

    @Override
    public Expected expected() {
      Multiway<RmsNorm> norms = Multiway.load("check.norm", numModalities,
          name -> new RmsNorm(weightRow(name.endsWith("multiway.1.weight") ? 1 : 0), eps));
      ScalarKernels kernels = new ScalarKernels();
      float[] out = new float[x.length];
      for (int t = 0; t < modality.length; t++) {
        norms.get(Modality.ofIndicator(modality[t])).forward(kernels, x, t * hidden, out, t * hidden);
      }
      return new Expected(out, magnitudes(out));
    }

    private Matrix weightRow(int copy) {
      ByteBuffer bytes = ByteBuffer.allocate(4 * hidden).order(ByteOrder.LITTLE_ENDIAN);
      bytes.asFloatBuffer().put(weights, copy * hidden, hidden);
      return new Matrix("check.norm." + copy, MemorySegment.ofArray(bytes.array()), DType.F32, 1, hidden, hidden, 0);
    }

    @Override
    public float[] runOn(Device gpu) {
      DevicePointer out = gpu.allocate(4L * x.length);
      gpu.launch(PtxKernels.RMS_NORM, modality.length, 1, out, gpu.upload(x), gpu.upload(weights),
          gpu.upload(modality), hidden, numModalities, eps);
      return gpu.downloadFloats(out, x.length);
    }
  }

  /**
   * The residual add fused with the next norm, against the engine's two steps as LlamaDecoderLayer
   * takes them: {@link ScalarKernels#axpy} with alpha 1, then {@link RmsNorm} through {@link Multiway}.
   * The expected values are the new residual rows, then the normed rows.
   */
  record AddRmsNormCase(RmsNormCase norm, float[] residual) implements KernelCase {

    @Override
    public String kernel() {
      return PtxKernels.ADD_RMS_NORM.name();
    }

    @Override
    public String sizes() {
      return norm.sizes();
    }

    /** The residual is one rounded add, as on the CPU (exact); the norm's bound covers the rest. */
    @Override
    public Tolerance tolerance() {
      return new Tolerance(0, norm.tolerance().relative(), "residual exact; norm: " + norm.tolerance().why());
    }

    /** {@link #norm()}'s x is what is added to the residual. */
    @Override
    public Expected expected() {
      float[] added = residual.clone();
      new ScalarKernels().axpy(1f, norm.x(), 0, added, 0, added.length);
      float[] normed = new RmsNormCase(norm.hidden(), norm.numModalities(), norm.weights(), norm.eps(), added,
          norm.modality()).expected().values();
      float[] both = new float[2 * added.length];
      System.arraycopy(added, 0, both, 0, added.length);
      System.arraycopy(normed, 0, both, added.length, normed.length);
      return new Expected(both, magnitudes(both));
    }

    @Override
    public float[] runOn(Device gpu) {
      int n = residual.length;
      DevicePointer out = gpu.allocate(4L * n);
      DevicePointer rows = gpu.upload(residual);
      gpu.launch(PtxKernels.ADD_RMS_NORM, norm.modality().length, 1, out, rows, gpu.upload(norm.x()),
          gpu.upload(norm.weights()), gpu.upload(norm.modality()), norm.hidden(), norm.numModalities(), norm.eps());
      float[] both = new float[2 * n];
      System.arraycopy(gpu.downloadFloats(rows, n), 0, both, 0, n);
      System.arraycopy(gpu.downloadFloats(out, n), 0, both, n, n);
      return both;
    }
  }

  /**
   * RoPE of rows of numHeads heads at their positions against {@link RotaryEmbedding#apply}. The
   * device's cos/sin tables are read out of that same RotaryEmbedding (rotating the unit pair (1, 0)
   * at position p gives (cos, sin) exactly), so both sides use one table.
   */
  record RopeCase(int numHeads, int headDim, int maxPositions, float theta, float[] x, int[] positions)
      implements KernelCase {

    @Override
    public String kernel() {
      return PtxKernels.ROPE.name();
    }

    @Override
    public String sizes() {
      return "rows=%d heads=%d headDim=%d maxPositions=%d".formatted(positions.length, numHeads, headDim, maxPositions);
    }

    @Override
    public Tolerance tolerance() {
      return Tolerance.exact("the same table and the same rounded products and sums (mul.rn, add.rn) as the CPU");
    }

    @Override
    public Expected expected() {
      RotaryEmbedding rope = new RotaryEmbedding(headDim, theta, maxPositions);
      float[] out = x.clone();
      int width = numHeads * headDim;
      for (int t = 0; t < positions.length; t++) {
        rope.apply(out, t * width, numHeads, positions[t]);
      }
      return new Expected(out, magnitudes(out));
    }

    /** {@code [maxPositions, headDim / 2]} cos table then sin table, from the engine's RotaryEmbedding. */
    float[][] tables() {
      RopeTables tables = RopeTables.of(new RotaryEmbedding(headDim, theta, maxPositions), headDim);
      return new float[][] {tables.cos(), tables.sin()};
    }

    @Override
    public float[] runOn(Device gpu) {
      float[][] tables = tables();
      DevicePointer data = gpu.upload(x);
      long pairs = (long) positions.length * numHeads * (headDim / 2);
      gpu.launch(PtxKernels.ROPE, strideGrid(PtxKernels.ROPE, pairs), 1, data, gpu.upload(positions),
          gpu.upload(tables[0]), gpu.upload(tables[1]), positions.length, numHeads, headDim, maxPositions);
      return gpu.downloadFloats(data, x.length);
    }
  }

  /** {@code silu(gate) * up} against {@link ScalarKernels#siluMul}. */
  record SiluMulCase(float[] gate, float[] up) implements KernelCase {

    @Override
    public String kernel() {
      return PtxKernels.SILU_MUL.name();
    }

    @Override
    public String sizes() {
      return "n=" + gate.length;
    }

    /** e^x by ex2.approx (about 2 ulp, plus the rounding of x * log2 e: |x| ulp) instead of Java's exp. */
    @Override
    public Tolerance tolerance() {
      return new Tolerance(1e-7, 1e-5, "e^-g by ex2.approx: about 2 ulp plus |g| ulp, times |out|");
    }

    @Override
    public Expected expected() {
      float[] out = new float[gate.length];
      new ScalarKernels().siluMul(gate, 0, up, 0, out, 0, gate.length);
      return new Expected(out, magnitudes(out));
    }

    @Override
    public float[] runOn(Device gpu) {
      DevicePointer out = gpu.allocate(4L * gate.length);
      gpu.launch(PtxKernels.SILU_MUL, strideGrid(PtxKernels.SILU_MUL, gate.length), 1, out, gpu.upload(gate),
          gpu.upload(up), gate.length);
      return gpu.downloadFloats(out, gate.length);
    }
  }

  /** {@code y += x} against {@link ScalarKernels#axpy} with alpha 1, as LlamaDecoderLayer adds its residuals. */
  record ResidualAddCase(float[] y, float[] x) implements KernelCase {

    @Override
    public String kernel() {
      return PtxKernels.RESIDUAL_ADD.name();
    }

    @Override
    public String sizes() {
      return "n=" + y.length;
    }

    @Override
    public Tolerance tolerance() {
      return Tolerance.exact("one rounded float32 add per element, as on the CPU");
    }

    @Override
    public Expected expected() {
      float[] out = y.clone();
      new ScalarKernels().axpy(1f, x, 0, out, 0, y.length);
      return new Expected(out, magnitudes(out));
    }

    @Override
    public float[] runOn(Device gpu) {
      DevicePointer data = gpu.upload(y);
      gpu.launch(PtxKernels.RESIDUAL_ADD, strideGrid(PtxKernels.RESIDUAL_ADD, y.length), 1, data, gpu.upload(x),
          y.length);
      return gpu.downloadFloats(data, y.length);
    }
  }
}
