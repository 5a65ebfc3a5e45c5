package dev.owlery.engine.decoder;

import static org.assertj.core.api.Assertions.assertThat;

import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.checkpoint.SafetensorsCheckpoint;
import dev.owlery.engine.checkpoint.SafetensorsWriter;
import dev.owlery.engine.kernel.ScalarKernels;
import dev.owlery.engine.kernel.VectorKernels;
import dev.owlery.engine.parallel.Collective;
import dev.owlery.engine.tensor.DType;
import dev.owlery.engine.tensor.Matrix;
import dev.owlery.engine.tensor.WeightFormat;
import java.lang.foreign.Arena;
import java.nio.file.Path;
import java.util.SplittableRandom;
import org.assertj.core.data.Offset;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A weight whose rows are longer than {@link BlockedWeight#maxBlockColumns} is stored in column
 * blocks where the checkpoint copies its weights, and multiplies as the whole matrix does: one
 * token (decode, the blocks' activations read in place), a few, and enough for the panel kernels
 * (the blocks' activation columns copied out). Row-parallel: the whole weight and a tensor-parallel
 * rank's columns, in F16, Q4_0 and Q8_0 (whose blocks are longer); column-parallel: a rank's
 * rows, whose row length is the whole input.
 */
class BlockedWeightTest {

  private static final int ROWS = 37;
  private static final int COLS = 6000;
  /** Whole Q8_0 / Q4_0 blocks of 32, also from column 1,024 on (6,000 columns are stored as F16). */
  private static final int QUANTIZED_COLS = 6016;
  private static final VectorKernels VECTOR = new VectorKernels(2);

  @TempDir
  static Path dir;
  private static Path file;

  @BeforeAll
  static void writeWeights() {
    file = dir.resolve("model.safetensors");
    new SafetensorsWriter().add("w", DType.F16, new long[] {ROWS, COLS}, gaussian(ROWS * COLS, 17))
        .add("q", DType.F16, new long[] {ROWS, QUANTIZED_COLS}, gaussian(ROWS * QUANTIZED_COLS, 19)).write(file);
  }

  private static float[] gaussian(int n, long seed) {
    SplittableRandom random = new SplittableRandom(seed);
    float[] w = new float[n];
    for (int i = 0; i < w.length; i++) {
      w[i] = (float) random.nextGaussian() * 0.05f;
    }
    return w;
  }

  @AfterAll
  static void closeKernels() {
    VECTOR.close();
  }

  @Test
  void rowParallelLongRowsAreCopiedInColumnBlocksAndMultiplyAsTheWholeMatrix() {
    assertRowParallelBlocks(WeightFormat.STORED, "w", COLS, 3, 2);
  }

  @Test
  void q8_0RowsHaveLongerBlocks() {
    assertRowParallelBlocks(WeightFormat.STORED, "q", QUANTIZED_COLS, 3, 2);
    // 6,000 columns are not whole Q8_0 blocks: every block stays F16, though most are 64-column multiples
    assertRowParallelBlocks(WeightFormat.Q8_0, "w", COLS, 3, 2);
    assertRowParallelBlocks(WeightFormat.Q8_0, "q", QUANTIZED_COLS, 2, 2);
    assertRowParallelBlocks(WeightFormat.Q4_0, "q", QUANTIZED_COLS, 3, 2);
  }

  /** Weight {@code name}'s columns and a rank's (from column 1,024), in {@code format}, in the blocks given. */
  private static void assertRowParallelBlocks(WeightFormat format, String name, int cols, int wholeBlocks,
      int rankBlocks) {
    try (Checkpoint mapped = SafetensorsCheckpoint.openFile(file);
        Checkpoint copied = SafetensorsCheckpoint.openFile(file).withWeightFormat(format);
        Arena arena = Arena.ofShared()) {
      IndexRange[] ranges = {new IndexRange(0, cols), new IndexRange(1024, cols)};
      int[] expectedBlocks = {wholeBlocks, rankBlocks};
      for (int i = 0; i < ranges.length; i++) {
        IndexRange columns = ranges[i];
        RowParallelLinear blocked = RowParallelLinear.load(copied, name, ROWS, cols, columns, Collective.single());
        int width = columns.end() - columns.start();
        assertThat(blocked.numBlocks()).as("%s blocks of %d columns", format, width).isEqualTo(expectedBlocks[i]);
        assertThat(blocked.inFeatures()).isEqualTo(width);
        Matrix whole = format.convert(mapped.tensor(name).asMatrix().colSlice(columns.start(), columns.end()), arena);
        for (int numTokens : new int[] {1, 5, 70}) {
          assertMultipliesAs(whole, numTokens, (x, xOffset, out, outOffset, n) -> blocked.forward(VECTOR, x, xOffset,
              out, outOffset, n));
        }
      }
      RowParallelLinear inPlace = RowParallelLinear.load(mapped, name, ROWS, cols, new IndexRange(0, cols),
          Collective.single());
      assertThat(inPlace.numBlocks()).as("a mapped weight is read in place, whole").isEqualTo(1);
    }
  }

  @Test
  void columnParallelLongRowsAreCopiedInColumnBlocksAndMultiplyAsTheWholeMatrix() {
    try (Checkpoint mapped = SafetensorsCheckpoint.openFile(file);
        Checkpoint copied = SafetensorsCheckpoint.openFile(file).withWeightFormat(WeightFormat.STORED)) {
      IndexRange rows = new IndexRange(4, ROWS);
      ColumnParallelLinear blocked = ColumnParallelLinear.load(copied, "w", ROWS, COLS, rows);
      assertThat(blocked.numBlocks()).isEqualTo(3);
      assertThat(blocked.outFeatures()).isEqualTo(rows.end() - rows.start());
      Matrix whole = mapped.tensor("w").asMatrix().rowSlice(rows.start(), rows.end());
      for (int numTokens : new int[] {1, 5, 70}) {
        assertMultipliesAs(whole, numTokens, (x, xOffset, out, outOffset, n) -> blocked.forward(VECTOR, x, xOffset,
            out, outOffset, n));
      }
      assertThat(ColumnParallelLinear.load(mapped, "w", ROWS, COLS, rows).numBlocks())
          .as("a mapped weight is read in place, whole").isEqualTo(1);
    }
  }

  /** A projection's {@code forward}: {@code numTokens} rows of x in, rows of products out. */
  private interface Forward {
    void apply(float[] x, int xOffset, float[] out, int outOffset, int numTokens);
  }

  private static void assertMultipliesAs(Matrix whole, int numTokens, Forward blocked) {
    int rows = whole.rows();
    int cols = whole.cols();
    int xOffset = 3;
    float[] x = new float[xOffset + numTokens * cols];
    SplittableRandom random = new SplittableRandom(numTokens);
    for (int i = xOffset; i < x.length; i++) {
      x[i] = (float) random.nextGaussian();
    }
    float[] expected = new float[numTokens * rows];
    new ScalarKernels().matmul(whole, x, xOffset, expected, 0, numTokens);
    int outOffset = 5;
    float[] actual = new float[outOffset + numTokens * rows];
    blocked.apply(x, xOffset, actual, outOffset, numTokens);
    for (int t = 0; t < numTokens; t++) {
      for (int r = 0; r < rows; r++) {
        double magnitude = 0;
        for (int c = 0; c < cols; c++) {
          magnitude += Math.abs(whole.get(r, c) * x[xOffset + t * cols + c]);
        }
        assertThat((double) actual[outOffset + t * rows + r]).as("%d tokens: token %d row %d", numTokens, t, r)
            .isCloseTo(expected[t * rows + r], Offset.offset(1e-5 * magnitude));
      }
    }
  }
}
