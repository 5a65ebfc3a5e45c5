package dev.owlery.engine.decoder;

import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.kernel.Kernels;
import dev.owlery.engine.parallel.Collective;
import dev.owlery.engine.tensor.Matrix;
import java.util.List;

/**
 * {@code Y = X A^T} with the input features split over the ranks (Megatron row parallelism): each
 * rank holds a range of columns of the {@code [out, in]} weight (a strided view read in place, or
 * copies in column blocks: {@link #MAX_BLOCK_COLUMNS}), multiplies its share of the input and
 * all-reduces the partial sums, so every rank ends with the full output. Used for o_proj and
 * down_proj: one all-reduce each.
 */
public final class RowParallelLinear {

  /**
   * Most columns of a weight block. A row of the input features' width is read against activations
   * of that width: in decode, float activations beyond ~16 KiB shared L1 with the weight stream and
   * slowed it (one thread, F16, 2,048 columns 26 GB/s; 5,632 columns 20-22 and 11,008 columns 16.7
   * GB/s, where the same rows stored as blocks of 2,816 and 2,752 columns read at 26-30 and 26-30;
   * bandwidth probe 23-27). So where the checkpoint copies its weights, longer rows are stored in
   * column blocks, each block's rows contiguous, and the blocks' products are added.
   */
  static final int MAX_BLOCK_COLUMNS = 2816;

  /** This rank's columns of the weight, in blocks of consecutive columns, in order. */
  private final Matrix[] blocks;
  private final int inFeatures;
  private final Collective collective;
  /** A block's activation columns and its products, for calls of several blocks; reused by every layer. */
  private static final ThreadLocal<float[][]> SCRATCH =
      ThreadLocal.withInitial(() -> new float[][] {new float[0], new float[0]});

  private RowParallelLinear(List<Matrix> blocks, Collective collective) {
    this.blocks = blocks.toArray(Matrix[]::new);
    this.inFeatures = blocks.stream().mapToInt(Matrix::cols).sum();
    this.collective = collective;
  }

  /** Loads the input features {@code columns} of {@code name}, checked to be {@code [outFeatures, inFeatures]}. */
  public static RowParallelLinear load(Checkpoint checkpoint, String name, int outFeatures, int inFeatures,
      IndexRange columns, Collective collective) {
    Matrix full = checkpoint.tensor(name, outFeatures, inFeatures).asMatrix();
    Matrix local = full.colSlice(columns.start(), columns.end());
    return new RowParallelLinear(checkpoint.weightColumnBlocks(local, MAX_BLOCK_COLUMNS), collective);
  }

  /** This rank's input features. */
  public int inFeatures() {
    return inFeatures;
  }

  public int outFeatures() {
    return blocks[0].rows();
  }

  /** Column blocks the weight is stored in. */
  int numBlocks() {
    return blocks.length;
  }

  /** {@code out[t] = sum over ranks of W_local x_local[t]}: a matmul per column block, then one all-reduce. */
  public void forward(Kernels kernels, float[] x, int xOffset, float[] out, int outOffset, int numTokens) {
    int rows = outFeatures();
    kernels.matmul(blocks[0], blockColumns(x, xOffset, numTokens, 0, 0), blockOffset(xOffset, numTokens, 0), out,
        outOffset, numTokens);
    if (blocks.length > 1) {
      float[][] s = SCRATCH.get();
      if (s[1].length < numTokens * rows) {
        s[1] = new float[numTokens * rows];
      }
      int from = blocks[0].cols();
      for (int b = 1; b < blocks.length; b++) {
        float[] in = blockColumns(x, xOffset, numTokens, b, from);
        kernels.matmul(blocks[b], in, blockOffset(xOffset, numTokens, from), s[1], 0, numTokens);
        kernels.axpy(1f, s[1], 0, out, outOffset, numTokens * rows);
        from += blocks[b].cols();
      }
    }
    collective.allReduceSum(out, outOffset, numTokens * rows);
  }

  /**
   * The activations of block {@code b}, which starts at input column {@code from}: x itself for one
   * token (its columns are consecutive) or one block, else the tokens' columns of the block copied
   * into a scratch, row after row.
   */
  private float[] blockColumns(float[] x, int xOffset, int numTokens, int b, int from) {
    if (numTokens == 1 || blocks.length == 1) {
      return x;
    }
    int width = blocks[b].cols();
    float[][] s = SCRATCH.get();
    if (s[0].length < numTokens * width) {
      s[0] = new float[numTokens * width];
    }
    for (int t = 0; t < numTokens; t++) {
      System.arraycopy(x, xOffset + t * inFeatures + from, s[0], t * width, width);
    }
    return s[0];
  }

  private int blockOffset(int xOffset, int numTokens, int from) {
    return numTokens == 1 || blocks.length == 1 ? xOffset + from : 0;
  }
}
