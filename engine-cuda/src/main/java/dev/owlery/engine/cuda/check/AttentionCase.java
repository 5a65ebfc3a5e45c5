package dev.owlery.engine.cuda.check;

import dev.owlery.engine.cuda.ptx.PtxKernels;
import dev.owlery.engine.cuda.runtime.Device;
import dev.owlery.engine.cuda.runtime.DevicePointer;
import dev.owlery.engine.kernel.AttentionMask;
import dev.owlery.engine.kernel.AttentionShape;
import dev.owlery.engine.kernel.ScalarKernels;
import dev.owlery.engine.kv.KvBlockPool;
import dev.owlery.engine.kv.PagedKvCache;
import java.util.List;

/**
 * Paged attention of decode and chunked-prefill rows against the engine's
 * {@link ScalarKernels#attention} with the causal mask over the same F16 {@link PagedKvCache}s, as
 * {@code LlamaAttention} calls it: each sequence's rows together, at the last positions of its keys.
 *
 * @param rowSeq per row its sequence; a sequence's rows are consecutive, at consecutive positions
 *     ending at its last cached position
 * @param q [rows, numHeads * headDim] float32 (after RoPE)
 * @param cachedKeys per sequence its keys [length, numKvHeads * headDim], F16-representable floats;
 *     cachedValues the same for values
 */
record AttentionCase(PagedLayout layout, int numHeads, int[] rowSeq, int[] rowPos, float[] q, float[][] cachedKeys,
    float[][] cachedValues) implements KernelCase {

  AttentionCase {
    for (int t = 1; t < rowSeq.length; t++) {
      boolean sameSequence = rowSeq[t] == rowSeq[t - 1];
      if (sameSequence && rowPos[t] != rowPos[t - 1] + 1) {
        throw new IllegalArgumentException("rows of one sequence must have consecutive positions, row " + t);
      }
    }
    for (int t = 0; t < rowSeq.length; t++) {
      boolean lastOfSequence = t + 1 == rowSeq.length || rowSeq[t + 1] != rowSeq[t];
      int length = cachedKeys[rowSeq[t]].length / layout.kvWidth();
      if (lastOfSequence && rowPos[t] != length - 1) {
        throw new IllegalArgumentException("the last row of sequence %d is at %d, its cache holds %d positions"
            .formatted(rowSeq[t], rowPos[t], length));
      }
    }
  }

  @Override
  public String kernel() {
    return PtxKernels.PAGED_ATTENTION.name();
  }

  @Override
  public String sizes() {
    return "rows=%d seqs=%d heads=%d kvHeads=%d headDim=%d blockSize=%d maxKeys=%d".formatted(rowSeq.length,
        layout.tables().length, numHeads, layout.numKvHeads(), layout.headDim(), layout.blockSize(),
        java.util.Arrays.stream(rowPos).max().orElse(0) + 1);
  }

  AttentionShape shape() {
    return new AttentionShape(numHeads, layout.numKvHeads(), layout.headDim(),
        (float) (1 / Math.sqrt(layout.headDim()))); // as LlamaAttention builds it
  }

  /**
   * The device takes e^x from ex2.approx (about 2 ulp, plus the rounding of x log2 e for scores of
   * order 10), keeps an online softmax (rescaling partial sums as the maximum grows) and adds in
   * another order; the outputs are weighted means of values of order 1.
   */
  @Override
  public Tolerance tolerance() {
    return new Tolerance(2e-5, 1e-4, "ex2.approx, online softmax and summation order on outputs of order 1");
  }

  @Override
  public Expected expected() {
    List<PagedKvCache> caches = filledEngineCaches(layout.enginePool());
    int width = numHeads * layout.headDim();
    float[] out = new float[rowSeq.length * width];
    ScalarKernels kernels = new ScalarKernels();
    for (int first = 0; first < rowSeq.length; ) {
      int end = first + 1;
      while (end < rowSeq.length && rowSeq[end] == rowSeq[first]) {
        end++;
      }
      int numKeys = rowPos[end - 1] + 1;
      kernels.attention(q, first * width, caches.get(rowSeq[first]).layer(0), shape(), AttentionMask.CAUSAL,
          end - first, numKeys, out, first * width);
      first = end;
    }
    float[] scale = new float[out.length];
    for (int i = 0; i < out.length; i++) {
      scale[i] = Math.abs(out[i]);
    }
    return new Expected(out, scale);
  }

  /** The engine's caches with every sequence's keys and values written at their positions. */
  List<PagedKvCache> filledEngineCaches(KvBlockPool pool) {
    List<PagedKvCache> caches = layout.engineCaches(pool);
    int kvWidth = layout.kvWidth();
    int headDim = layout.headDim();
    for (int s = 0; s < caches.size(); s++) {
      for (int p = 0; p < cachedKeys[s].length / kvWidth; p++) {
        for (int h = 0; h < layout.numKvHeads(); h++) {
          int from = p * kvWidth + h * headDim;
          caches.get(s).write(0, p, h, cachedKeys[s], from, cachedValues[s], from);
        }
      }
    }
    return caches;
  }

  /** The device pool arrays (keys, values) as F16 bits, each element where the engine's cache index puts it. */
  short[][] devicePools() {
    List<PagedKvCache> caches = layout.engineCaches(layout.enginePool());
    int kvWidth = layout.kvWidth();
    int headDim = layout.headDim();
    short[] keys = new short[layout.poolElements()];
    short[] values = new short[layout.poolElements()];
    for (int s = 0; s < caches.size(); s++) {
      for (int p = 0; p < cachedKeys[s].length / kvWidth; p++) {
        for (int h = 0; h < layout.numKvHeads(); h++) {
          int index = caches.get(s).index(p, h);
          for (int d = 0; d < headDim; d++) {
            keys[index + d] = Float.floatToFloat16(cachedKeys[s][p * kvWidth + h * headDim + d]);
            values[index + d] = Float.floatToFloat16(cachedValues[s][p * kvWidth + h * headDim + d]);
          }
        }
      }
    }
    return new short[][] {keys, values};
  }

  @Override
  public float[] runOn(Device gpu) {
    short[][] pools = devicePools();
    int width = numHeads * layout.headDim();
    DevicePointer out = gpu.allocate(4L * rowSeq.length * width);
    gpu.launch(PtxKernels.PAGED_ATTENTION, numHeads, rowSeq.length, out, gpu.upload(q), gpu.upload(pools[0]),
        gpu.upload(pools[1]), gpu.upload(layout.flatTables()), gpu.upload(rowSeq), gpu.upload(rowPos), numHeads,
        layout.numKvHeads(), layout.headDim(), layout.blockSize(), layout.maxBlocksPerSeq(), shape().scale());
    return gpu.downloadFloats(out, rowSeq.length * width);
  }
}
