package dev.owlery.engine.cuda.forward;

import static dev.owlery.engine.cuda.forward.DeviceMatrix.ceilDiv;

import dev.owlery.engine.cuda.ptx.PtxKernel;
import dev.owlery.engine.cuda.ptx.PtxKernels;
import dev.owlery.engine.cuda.runtime.Device;
import dev.owlery.engine.cuda.runtime.DevicePointer;

/**
 * A tensor-core product cut along K when it has too few tiles to fill the GPU: a decode batch's
 * 4,096-row product has 64 tiles of 64 x 64 for an H200's 132 SMs, so most of the GPU would wait
 * while 64 blocks read the weights. Each split writes its partial sums into a scratch buffer and
 * {@code gemm_split_sum} adds them in split order, so the result is the same on every run (no
 * atomics); gemm.cu's header has the kernel side.
 */
public final class SplitGemm {

  /** Blocks a product is cut to reach: two per SM of an H200 (132 SMs). */
  static final int TARGET_BLOCKS = 264;
  /** At most this many splits. */
  static final int MAX_SPLITS = 8;
  /** Columns a split keeps at least: 16 K tiles, so that its stages have something to overlap. */
  static final int MIN_COLS_PER_SPLIT = 512;
  /**
   * Floats of the scratch a step's products share: enough for every product that is cut, whose
   * tiles are fewer than {@link #TARGET_BLOCKS}, so its splits times its outputs stay under twice
   * {@code TARGET_BLOCKS} 64 x 64 tiles (a larger one is cut less, {@link #splits}).
   */
  public static final long SCRATCH_FLOATS = 2L * TARGET_BLOCKS * PtxKernels.GEMM64_TILE * PtxKernels.GEMM64_TILE;
  /** {@link #SCRATCH_FLOATS} in bytes. */
  public static final long SCRATCH_BYTES = 4 * SCRATCH_FLOATS;

  private SplitGemm() {}

  /**
   * The splits for {@code gemm} at this size: 1 when its tiles already reach {@link #TARGET_BLOCKS},
   * else enough to reach it, at most {@link #MAX_SPLITS}, each at least {@link #MIN_COLS_PER_SPLIT}
   * columns, and their partials within {@code scratchFloats}.
   */
  public static int splits(PtxKernel gemm, int rows, int cols, int numTokens, long scratchFloats) {
    int tile = PtxKernels.gemmTile(gemm);
    long tiles = (long) ceilDiv(rows, tile) * ceilDiv(numTokens, tile);
    if (tiles >= TARGET_BLOCKS) {
      return 1;
    }
    long wanted = Math.min(MAX_SPLITS, (TARGET_BLOCKS + tiles - 1) / tiles);
    long byColumns = Math.max(1, cols / MIN_COLS_PER_SPLIT);
    long byScratch = scratchFloats / ((long) rows * numTokens);
    return (int) Math.max(1, Math.min(wanted, Math.min(byColumns, byScratch)));
  }

  /** Columns per split: a multiple of 32 (gemm.cu's K tile), so every split starts on a tile. */
  static int colsPerSplit(int cols, int splits) {
    return ceilDiv(ceilDiv(cols, splits), 32) * 32;
  }

  /**
   * Queues {@code out[t, r] = sum_c W[r, c] x[t, c]} by {@code gemm} in {@code splits} K splits (fewer
   * when the columns run out first), through {@code scratch} when there are several.
   */
  public static void launch(Device device, PtxKernel gemm, DevicePointer out, DevicePointer w, DevicePointer x,
      int rows, int cols, int numTokens, int splits, DevicePointer scratch) {
    int tile = PtxKernels.gemmTile(gemm);
    int kPerSplit = colsPerSplit(cols, splits);
    int used = ceilDiv(cols, kPerSplit);
    DevicePointer target = used > 1 ? scratch : out;
    device.launch(gemm, ceilDiv(rows, tile), ceilDiv(numTokens, tile) * used, target, w, x, rows, cols, numTokens,
        kPerSplit);
    if (used > 1) {
      int n = Math.multiplyExact(rows, numTokens);
      device.launch(PtxKernels.GEMM_SPLIT_SUM, DeviceDecoderLayer.strideGrid(PtxKernels.GEMM_SPLIT_SUM, n), 1, out,
          scratch, n, used);
    }
  }
}
