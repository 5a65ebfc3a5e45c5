package dev.owlery.engine.decoder;

import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.kernel.Kernels;
import dev.owlery.engine.tensor.DType;
import dev.owlery.engine.tensor.Matrix;
import java.util.List;

/**
 * A weight matrix of a decoder projection, stored in blocks of at most {@link #maxBlockColumns}
 * consecutive columns where the checkpoint copies its weights ({@link Checkpoint#weightColumnBlocks}),
 * and multiplied as the whole matrix: each block's product, added.
 */
final class BlockedWeight {

  /**
   * Most columns of a block of 16- or 32-bit (and Q4_0) weights. A row is read against activations
   * of its width: in decode, float activations beyond ~16 KiB share L1 with the weight stream and
   * slow it. One thread, F16, rows streamed from DRAM: 2,048 columns 26 GB/s; 5,632 columns 20-22
   * and 11,008 columns 16.7 GB/s, where the same rows stored as blocks of 2,816 and 2,752 columns
   * read at 26-30 (bandwidth probe 23-27). In another sitting 4,096 columns (the 7B's q/k/v,
   * gate/up and LM head) read at 13.0-14.7 GB/s against 17.7-20.5 for 2,048, a plain sum of the
   * same memory 20-24.
   */
  static final int MAX_BLOCK_COLUMNS = 2816;
  /**
   * Most columns of a Q8_0 block. Its decode kernel is bound by instructions more than by memory,
   * so each block's call (set-up, reduction, the added products) weighs more. On the 7B's widths
   * (6 layers), both layouts in one JVM decoding alternately: the 4,096-column rows whole and the
   * 11,008-column rows in three blocks against every row in blocks of 2,816, 1 thread 12.43 against
   * 11.47 tokens/s (ahead in 5 of 7 pairs), 2 threads 24.69 against 21.77 (7 of 7). Every row
   * whole was slower (1 thread 11.45 against 12.96 all in blocks of 2,816), as were the 1.1B's
   * 5,632-column rows whole (18.80 against 19.64 in two blocks). Q4_0 measured level either way
   * and keeps {@link #MAX_BLOCK_COLUMNS}.
   */
  static final int MAX_Q8_0_BLOCK_COLUMNS = 4096;

  /** Most columns of a block of weights stored in {@code dtype}. */
  static int maxBlockColumns(DType dtype) {
    return dtype == DType.Q8_0 ? MAX_Q8_0_BLOCK_COLUMNS : MAX_BLOCK_COLUMNS;
  }

  /** A block's activation columns and its products, for calls of several blocks; reused by every layer. */
  private static final ThreadLocal<float[][]> SCRATCH =
      ThreadLocal.withInitial(() -> new float[][] {new float[0], new float[0]});

  /** The blocks of consecutive columns, in order. */
  private final Matrix[] blocks;
  private final int cols;

  private BlockedWeight(List<Matrix> blocks) {
    this.blocks = blocks.toArray(Matrix[]::new);
    this.cols = blocks.stream().mapToInt(Matrix::cols).sum();
  }

  /** {@code view} as {@code checkpoint} serves it: whole where mapped, else copied in column blocks. */
  static BlockedWeight load(Checkpoint checkpoint, Matrix view) {
    return new BlockedWeight(checkpoint.weightColumnBlocks(view, BlockedWeight::maxBlockColumns));
  }

  int rows() {
    return blocks[0].rows();
  }

  int cols() {
    return cols;
  }

  int numBlocks() {
    return blocks.length;
  }

  /**
   * {@code out[t] = W x[t]} for {@code numTokens} consecutive rows of {@link #cols()} activations:
   * a matmul per block, each block's products after the first added to {@code out}.
   */
  void matmul(Kernels kernels, float[] x, int xOffset, float[] out, int outOffset, int numTokens) {
    if (blocks.length == 1) {
      kernels.matmul(blocks[0], x, xOffset, out, outOffset, numTokens);
      return;
    }
    int rows = rows();
    float[][] scratch = SCRATCH.get();
    if (scratch[1].length < numTokens * rows) {
      scratch[1] = new float[numTokens * rows];
    }
    int from = 0;
    for (int b = 0; b < blocks.length; b++) {
      float[] in = x;
      int inOffset = xOffset + from;
      if (numTokens > 1) { // the block's columns of each token, copied out consecutively
        in = blockColumns(kernels, x, xOffset, numTokens, from, blocks[b].cols(), scratch);
        inOffset = 0;
      }
      if (b == 0) {
        kernels.matmul(blocks[b], in, inOffset, out, outOffset, numTokens);
      } else {
        kernels.matmul(blocks[b], in, inOffset, scratch[1], 0, numTokens);
        kernels.axpy(1f, scratch[1], 0, out, outOffset, numTokens * rows);
      }
      from += blocks[b].cols();
    }
  }

  private float[] blockColumns(Kernels kernels, float[] x, int xOffset, int numTokens, int from, int width,
      float[][] scratch) {
    if (scratch[0].length < numTokens * width) {
      scratch[0] = new float[numTokens * width];
    }
    float[] columns = scratch[0];
    kernels.forEachRow(numTokens, t -> System.arraycopy(x, xOffset + t * cols + from, columns, t * width, width));
    return columns;
  }
}
