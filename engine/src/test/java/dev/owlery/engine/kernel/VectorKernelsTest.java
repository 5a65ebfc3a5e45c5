package dev.owlery.engine.kernel;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.owlery.engine.tensor.DType;
import dev.owlery.engine.tensor.Matrix;
import dev.owlery.engine.tensor.WeightFormat;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.List;
import java.util.Random;
import jdk.incubator.vector.IntVector;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Holds {@link VectorKernels} to {@link ScalarKernels} at sizes that are not multiples of any vector
 * width (769 columns, 37 rows), at weight addresses that are not aligned, on strided column-slice
 * views, for every weight dtype. Unsupported: F16 infinities/NaNs in weights (see VectorMatmul).
 */
class VectorKernelsTest {

  private static final int ROWS = 37;
  private static final int COLS = 769;

  private final Arena arena = Arena.ofShared(); // read by the kernel threads
  private final VectorKernels vector = new VectorKernels(2);
  private final ScalarKernels scalar = new ScalarKernels();

  @AfterEach
  void close() {
    vector.close();
    arena.close();
  }

  /** Writes {@code rows x cols} random weights of {@code dtype} starting {@code byteShift} bytes into a segment. */
  private Matrix randomMatrix(DType dtype, int rows, int cols, int byteShift, long seed) {
    MemorySegment segment = arena.allocate((long) rows * cols * dtype.byteSize() + byteShift + 64, 64)
        .asSlice(byteShift);
    Random random = new Random(seed);
    ValueLayout.OfFloat f32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    ValueLayout.OfShort i16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    for (long i = 0; i < (long) rows * cols; i++) {
      float v = (float) random.nextGaussian();
      switch (dtype) {
        case F32 -> segment.setAtIndex(f32, i, v);
        case F16 -> segment.setAtIndex(i16, i, Float.floatToFloat16(v));
        case BF16 -> segment.setAtIndex(i16, i, (short) (Float.floatToRawIntBits(v) >>> 16));
        case I64, I32, U8, Q8_0, Q4_0 -> throw new IllegalArgumentException("not a checkpoint weight dtype: " + dtype);
      }
    }
    return new Matrix("w", segment, dtype, rows, cols, cols, 0);
  }

  private static float[] randomActivations(int n, long seed) {
    Random random = new Random(seed);
    float[] x = new float[n];
    for (int i = 0; i < n; i++) {
      x[i] = (float) random.nextGaussian();
    }
    return x;
  }

  /**
   * fp32 dot products summed in a different order differ by at most about n * 2^-24 * sum|w x|
   * (n = 769 gives 4.6e-5); 1e-5 of sum|w x| is well inside that and far below any real bug.
   */
  private void assertMatmulAgrees(Matrix w, int numTokens, int xOffset) {
    assertMatmulAgrees(w, numTokens, xOffset, 1f);
  }

  private void assertMatmulAgrees(Matrix w, int numTokens, int xOffset, float activationScale) {
    float[] x = randomActivations(xOffset + numTokens * w.cols(), 7);
    for (int i = 0; i < x.length; i++) {
      x[i] *= activationScale;
    }
    assertMatmulAgrees(w, x, numTokens, xOffset);
  }

  private void assertMatmulAgrees(Matrix w, float[] x, int numTokens, int xOffset) {
    int outOffset = 3;
    float[] expected = new float[outOffset + numTokens * w.rows()];
    float[] actual = new float[expected.length];
    scalar.matmul(w, x, xOffset, expected, outOffset, numTokens);
    vector.matmul(w, x, xOffset, actual, outOffset, numTokens);
    for (int t = 0; t < numTokens; t++) {
      for (int r = 0; r < w.rows(); r++) {
        double magnitude = 0;
        for (int c = 0; c < w.cols(); c++) {
          magnitude += Math.abs(w.get(r, c) * x[xOffset + t * w.cols() + c]);
        }
        int i = outOffset + t * w.rows() + r;
        assertThat((double) actual[i]).as("token %d row %d", t, r).isCloseTo(expected[i],
            org.assertj.core.data.Offset.offset(1e-5 * magnitude));
      }
    }
  }

  @ParameterizedTest
  @EnumSource(names = {"F32", "F16", "BF16"})
  void matmulMatchesReferenceAtOddSizesAndUnalignedOffsets(DType dtype) {
    for (int byteShift : new int[] {0, 2, 6, 3}) {
      Matrix w = randomMatrix(dtype, ROWS, COLS, byteShift, 11 + byteShift);
      for (int numTokens : new int[] {1, 3, 4, 5, 9}) {
        assertMatmulAgrees(w, numTokens, 5);
      }
    }
  }

  @ParameterizedTest
  @EnumSource(names = {"F32", "F16", "BF16"})
  void matmulRunsAScalarHeadWhenEveryRowIsEquallyMisaligned(DType dtype) {
    // 784 columns: every row starts at the same offset modulo the load size, so the kernel aligns
    // the body with a scalar head of up to 15 elements
    for (int byteShift : new int[] {2, 4, 6, 12, 30}) {
      Matrix w = randomMatrix(dtype, ROWS, 784, byteShift, 13 + byteShift);
      for (int numTokens : new int[] {1, 4, 6}) {
        assertMatmulAgrees(w, numTokens, 1);
      }
    }
  }

  @ParameterizedTest
  @EnumSource(names = {"F32", "F16", "BF16"})
  void matmulCoversFourRowGroupsAndLeftoverRows(DType dtype) {
    // decode runs four rows per kernel call: every remainder modulo four, groups that straddle
    // the 16-row blocks, and a row stride wider than the columns
    Matrix full = randomMatrix(dtype, 40, COLS + 17, 6, 17);
    for (int rows : new int[] {1, 2, 3, 4, 5, 7, 8, 19, 33, 40}) {
      assertMatmulAgrees(full.rowSlice(0, rows).colSlice(3, 3 + COLS), 1, 0);
      assertMatmulAgrees(full.rowSlice(40 - rows, 40), 2, 1);
    }
  }

  @ParameterizedTest
  @EnumSource(names = {"F32", "F16", "BF16"})
  void prefillTilesCoverLeftoverRowsAndTokens(DType dtype) {
    // prefill runs 2-row x 4-token tiles over 16-row blocks: odd rows in a block, token counts
    // that are not multiples of four, and a strided view with an unaligned scalar head
    Matrix full = randomMatrix(dtype, 40, COLS + 17, 2, 19);
    for (int rows : new int[] {1, 2, 3, 17, 33}) {
      for (int numTokens : new int[] {4, 7, 8, 13}) {
        assertMatmulAgrees(full.rowSlice(1, 1 + rows).colSlice(5, 5 + COLS), numTokens, 2);
      }
    }
  }

  @ParameterizedTest
  @EnumSource(names = {"F32", "F16", "BF16"})
  void matmulReadsStridedColumnAndRowSlicesInPlace(DType dtype) {
    Matrix full = randomMatrix(dtype, ROWS + 10, COLS + 231, 0, 23);
    assertMatmulAgrees(full.colSlice(101, 101 + COLS), 1, 0);
    assertMatmulAgrees(full.colSlice(101, 101 + COLS).rowSlice(3, 3 + ROWS), 5, 1);
    assertMatmulAgrees(full.rowSlice(7, 7 + ROWS).colSlice(0, 333), 4, 2);
  }

  /**
   * Decode reads F16 and BF16 rows four at a time and the rows a row block leaves over one at a
   * time; both kernels must give a row the same sum to the last bit, or a row's logit would depend
   * on the thread count or tensor-parallel slice that placed it. 16 rows on two threads go four at a
   * time; each row alone goes through the one-row kernel (with a scalar head and tail: 769 columns
   * of rows 800 apart, 8 bytes off alignment).
   */
  @ParameterizedTest
  @EnumSource(names = {"F16", "BF16"})
  void decodeRowSumsDoNotDependOnWhichKernelReadTheRow(DType dtype) {
    Matrix w = randomMatrix(dtype, 16, 800, 2, 89).colSlice(3, 3 + COLS);
    float[] x = randomActivations(w.cols(), 97);
    float[] together = new float[w.rows()];
    vector.matmul(w, x, 0, together, 0, 1);
    for (int r = 0; r < w.rows(); r++) {
      float[] alone = new float[1];
      vector.matmul(w.rowSlice(r, r + 1), x, 0, alone, 0, 1);
      assertThat(Float.floatToRawIntBits(alone[0])).as("row %d: %s alone, %s with its group", r, alone[0], together[r])
          .isEqualTo(Float.floatToRawIntBits(together[r]));
    }
  }

  @ParameterizedTest
  @EnumSource(names = {"F32", "F16", "BF16"})
  void largeAndTinyActivationsKeepFullPrecision(DType dtype) {
    // the F16 kernels move a factor 2^80 into the activations: |x| of 1e6 and 1e15 (beyond 2^46,
    // rescaled) must not overflow, and 1e-30 must not lose precision
    Matrix w = randomMatrix(dtype, ROWS, COLS, 0, 29);
    assertMatmulAgrees(w, 1, 0, 1e6f);
    assertMatmulAgrees(w, 1, 0, 1e15f);
    assertMatmulAgrees(w, 3, 0, 1e15f);
    assertMatmulAgrees(w, 5, 0, 1e6f);
    assertMatmulAgrees(w, 5, 0, 1e-30f);
    assertMatmulAgrees(w, 17, 0, 1e6f);
  }

  /**
   * F16 rows where two weights in three have a zero exponent field (signed zeros and subnormals),
   * against positive activations so that any uncorrected lifted half adds up: the dot products
   * (1-3 tokens) read such halves lifted to 2^-95 and more and correct them from
   * {@link ZeroExponentHalves}, at every head (byte shifts) and through a column slice; the tiles
   * (5 tokens) widen them exactly. Without the correction the sums are off by about 1e-5 of each
   * weight's share per zero-exponent half, four times the tolerance.
   */
  @Test
  void f16RowsFullOfZerosAndSubnormalsMatchTheReference() {
    for (int byteShift : new int[] {0, 2, 6}) {
      MemorySegment segment = arena.allocate(2L * ROWS * (COLS + 40) + byteShift + 64, 64).asSlice(byteShift);
      Random random = new Random(37 + byteShift);
      ValueLayout.OfShort i16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
      for (long i = 0; i < (long) ROWS * (COLS + 40); i++) {
        int sign = random.nextBoolean() ? 0x8000 : 0;
        short bits = switch (random.nextInt(3)) {
          case 0 -> (short) sign;
          case 1 -> (short) (sign | (1 + random.nextInt(0x3ff)));
          default -> Float.floatToFloat16((float) random.nextGaussian());
        };
        segment.setAtIndex(i16, i, bits);
      }
      Matrix w = new Matrix("zeros", segment, DType.F16, ROWS, COLS + 40, COLS + 40, 0);
      for (Matrix view : new Matrix[] {w, w.colSlice(13, 13 + COLS)}) {
        for (int numTokens : new int[] {1, 2, 3, 5}) {
          float[] x = randomActivations(2 + numTokens * view.cols(), 41);
          for (int i = 0; i < x.length; i++) {
            x[i] = Math.abs(x[i]);
          }
          assertMatmulAgrees(view, x, numTokens, 2);
        }
      }
    }
  }

  @Test
  void oneLargeActivationInAnyTokenBlockRescalesAManyTokenF16Call() {
    // the panel path's threads find the largest magnitude while transposing, block by block, and
    // transpose again when it needs a rebias shift: 1e6 anywhere, in a call of several token blocks
    Matrix w = randomMatrix(DType.F16, ROWS, COLS, 0, 31);
    int numTokens = 4 * PanelKernels.MIN_TOKENS + 6;
    for (int at : new int[] {0, COLS * numTokens / 2, COLS * numTokens - 1}) {
      float[] x = randomActivations(1 + numTokens * COLS, 13);
      x[1 + at] = -1e6f;
      assertMatmulAgrees(w, x, numTokens, 1);
    }
  }

  /**
   * Every finite half, in both halves of an int lane, widens into a row buffer to its exact value
   * times 2^-80, as a normal float: subnormal halves included, which must not leave the tiles' FMAs
   * a subnormal operand (on Intel cores each such FMA takes a microcode assist: the 1.1B's prefill
   * ran at 0.76x its speed without them). The dot products' lifted widening gives a normal float
   * too, which with {@link VectorMatmul#f16LiftError} added is the exact value again.
   */
  @Test
  void everyFiniteHalfWidensExactlyAndNeverToASubnormalFloat() {
    int lanes = IntVector.SPECIES_PREFERRED.length();
    int[] pairs = new int[lanes];
    float scale = Math.scalb(1f, VectorMatmul.F16_REBIAS_EXPONENT);
    for (int h = 0; h < 0x10000; h += lanes) {
      for (int i = 0; i < lanes; i++) {
        int even = h + i;
        int odd = (even * 40503) & 0xffff; // another half in the high halves
        pairs[i] = (odd << 16) | even;
      }
      IntVector v = IntVector.fromArray(IntVector.SPECIES_PREFERRED, pairs, 0);
      float[] evens = VectorMatmul.evenF16Normal(v).toArray();
      float[] odds = VectorMatmul.oddF16Normal(v).toArray();
      float[] liftedEvens = VectorMatmul.evenF16Lifted(v).toArray();
      float[] liftedOdds = VectorMatmul.oddF16Lifted(v).toArray();
      for (int i = 0; i < lanes; i++) {
        for (int half : new int[] {0, 1}) {
          int bits = half == 0 ? pairs[i] & 0xffff : pairs[i] >>> 16;
          float widened = half == 0 ? evens[i] : odds[i];
          if ((bits & 0x7c00) == 0x7c00) {
            continue; // infinities and NaNs: not supported in weights (VectorMatmul's javadoc)
          }
          float expected = Float.float16ToFloat((short) bits);
          assertThat(widened * scale).as("half %04x", bits).isEqualTo(expected, org.assertj.core.data.Offset.offset(0f));
          assertThat(widened == 0f || Math.abs(widened) >= Float.MIN_NORMAL).as("half %04x widens to a normal float", bits)
              .isTrue();
          float lifted = half == 0 ? liftedEvens[i] : liftedOdds[i];
          assertThat(Math.abs(lifted) >= Float.MIN_NORMAL).as("half %04x lifts to a normal float", bits).isTrue();
          float error = VectorMatmul.f16LiftError((short) bits);
          assertThat(error == 0f || Math.abs(error) >= Float.MIN_NORMAL).as("half %04x: a normal correction", bits).isTrue();
          assertThat((lifted + error) * scale).as("half %04x lifted and corrected", bits)
              .isEqualTo(expected, org.assertj.core.data.Offset.offset(0f));
          assertThat(error == 0f).as("half %04x needs a correction", bits).isEqualTo((bits & 0x7c00) != 0);
        }
      }
    }
  }

  /**
   * The kernels hold each F16 matrix's zero-exponent list only while the matrix is reachable
   * elsewhere: a list that referenced its matrix would keep every model's matrices alive.
   */
  @Test
  void zeroExponentListsGoWithTheirMatrices() throws InterruptedException {
    Matrix kept = randomMatrix(DType.F16, 40, COLS, 0, 43);
    assertMatmulAgrees(kept, 1, 0);
    for (int i = 0; i < 20; i++) {
      assertMatmulAgrees(randomMatrix(DType.F16, 8, COLS, 0, 44 + i), 1, 0);
    }
    assertThat(vector.zeroExponentListsHeld()).isGreaterThan(2);
    // lists of collected matrices go at the next matrix's first call
    for (int attempt = 0; attempt < 50 && vector.zeroExponentListsHeld() > 2; attempt++) {
      System.gc();
      Thread.sleep(20);
      assertMatmulAgrees(randomMatrix(DType.F16, 8, COLS, 0, 100 + attempt), 2, 0);
    }
    assertThat(vector.zeroExponentListsHeld()).isLessThanOrEqualTo(2);
    assertMatmulAgrees(kept, 3, 0);
  }

  @Test
  void pairPositionAndPairedColumnAreInverses() {
    // columns [3, 3 + 4L) paired, those before and after in place; the permutation moves x there
    int l = VectorMatmul.F.length();
    int cols = 3 + 4 * l + 5;
    float[] x = new float[cols];
    for (int c = 0; c < cols; c++) {
      x[c] = c;
    }
    float[] permuted = new float[cols];
    VectorMatmul.permuteForPairs(x, 0, cols, 1, 3, 1f, permuted);
    for (int c = 0; c < cols; c++) {
      int k = VectorMatmul.pairPosition(c, 3, 3 + 4 * l);
      assertThat(permuted[k]).as("column %d at position %d", c, k).isEqualTo(c);
      assertThat(VectorMatmul.pairedColumn(k, 3, 3 + 4 * l)).isEqualTo(c);
    }
  }

  @Test
  void f16RebiasShiftFindsTheLargestMagnitudeAnywhereAndIgnoresNonFiniteOnes() {
    // activations are scaled by 2^rebias: exponents up to 126 - rebias stay unshifted
    int rebias = VectorMatmul.F16_REBIAS_EXPONENT;
    int limit = 126 - rebias;
    // 1,000 floats: vectors of maxima over the first 992, a scalar tail after them
    for (int at : new int[] {0, 31, 32, 500, 991, 992, 999}) {
      float[] x = new float[1003];
      x[3 + at] = -Math.scalb(1.5f, limit + 4); // shifted by 4
      x[3 + (at + 1) % 1000] = Math.scalb(1.2f, limit + 2);
      assertThat(VectorMatmul.f16RebiasShift(x, 3, 1000, rebias)).as("largest at %d", at).isEqualTo(4);
      x[3 + at] = Math.scalb(1.9f, limit); // not shifted: shifted by 2 for the other one
      assertThat(VectorMatmul.f16RebiasShift(x, 3, 1000, rebias)).as("2^(limit+2) beside %d", at).isEqualTo(2);
      x[3 + (at + 1) % 1000] = 1f;
      assertThat(VectorMatmul.f16RebiasShift(x, 3, 1000, rebias)).as("2^limit at %d", at).isEqualTo(0);
      x[3 + (at + 500) % 1000] = Float.NaN;
      x[3 + at] = Math.scalb(1f, limit - 3);
      assertThat(VectorMatmul.f16RebiasShift(x, 3, 1000, rebias)).as("NaN beside %d", at).isEqualTo(0);
      x[3 + (at + 500) % 1000] = Float.NEGATIVE_INFINITY;
      assertThat(VectorMatmul.f16RebiasShift(x, 3, 1000, rebias)).as("-inf beside %d", at).isEqualTo(0);
    }
    float[] outside = new float[40];
    outside[0] = Math.scalb(1f, limit + 10);
    outside[39] = Math.scalb(1f, limit + 10);
    assertThat(VectorMatmul.f16RebiasShift(outside, 1, 38, rebias)).isEqualTo(0);
  }

  @ParameterizedTest
  @EnumSource(names = {"F32", "F16", "BF16"})
  void multiThreadedMatmulMatchesReference(DType dtype) {
    Matrix w = randomMatrix(dtype, 517, COLS, 2, 31);
    assertMatmulAgrees(w, 1, 0);
    assertMatmulAgrees(w, 6, 3);
  }

  @ParameterizedTest
  @EnumSource(names = {"F32", "F16", "BF16", "Q8_0"})
  void manyTokenPanelsCoverLeftoverRowsAndTokenVectors(DType dtype) {
    // from one token vector on, the outer-product kernels: 12-row groups by one token vector below 4L
    // tokens; from 4L on 6-row groups (37 rows leave 1) by 4-vector token tiles, the leftover token
    // vectors in 12-row groups, padding tokens, on an unaligned strided view
    Matrix full = dtype == DType.Q8_0 ? randomQ8Matrix(40, 768 + 64, 67) : randomMatrix(dtype, 40, COLS + 17, 2, 67);
    int cols = dtype == DType.Q8_0 ? 768 : COLS;
    int first = dtype == DType.Q8_0 ? 32 : 5;
    for (int rows : new int[] {1, 6, 37}) {
      for (int numTokens : new int[] {16, 17, 40, 64, 65, 81, 140}) {
        assertMatmulAgrees(full.rowSlice(1, 1 + rows).colSlice(first, first + cols), numTokens, 2);
      }
    }
    assertMatmulAgrees(randomMatrix(dtype == DType.Q8_0 ? DType.F32 : dtype, 517, 96, 0, 71), 100, 0);
  }

  @ParameterizedTest
  @EnumSource(names = {"F32", "F16", "BF16"})
  void batchedDecodeAddsThePartialSumsOfEveryNarrowColumnChunkAfterAScalarHead(DType dtype) {
    // fewer than 4L tokens: 12-row groups widened NARROW_CHUNK columns at a time. Two chunks and a
    // part: every row equally misaligned (a row is a whole number of 64-byte loads), so the first
    // chunk also holds a scalar head and the others start at the head plus whole chunks; 37 rows
    // (a last group of one); 17 and 20 tokens end in a vector of dot products, 21 and 48 in tiles
    int cols = 2 * PanelKernels.NARROW_CHUNK + 96;
    for (int byteShift : dtype == DType.F32 ? new int[] {4, 12} : new int[] {2, 6, 30}) {
      Matrix w = randomMatrix(dtype, ROWS, cols, byteShift, 127 + byteShift);
      for (int numTokens : new int[] {16, 17, 20, 21, 48}) {
        assertMatmulAgrees(w, numTokens, 3);
      }
    }
  }

  @ParameterizedTest
  @EnumSource(names = {"F32", "F16", "BF16"})
  void panelsLongerThanAColumnChunkAddTheirChunksPartialSums(DType dtype) {
    // 2 K_CHUNK + 37 columns: three uneven column chunks per 6x4 tile, on an unaligned strided view;
    // 64 tokens (one whole token tile) and 81 (one and a leftover vector, whose tiles are not chunked)
    int cols = 2 * PanelKernels.K_CHUNK + 37;
    Matrix full = randomMatrix(dtype, 40, cols + 9, 2, 109);
    for (int numTokens : new int[] {64, 81}) {
      assertMatmulAgrees(full.rowSlice(3, 40).colSlice(9, 9 + cols), numTokens, 1);
    }
  }

  @Test
  void callsOfManyRowsShareWholeBlocksOfRowsOverEveryTokenTile() {
    // enough rows for the two threads' shares to be whole blocks (4 per thread, the last partial),
    // more columns than a chunk, 129 tokens (two whole 64-token tiles at 512 bits, then one): every
    // chunk's partial sums over every token tile of a block
    int rows = 4 * 2 * PanelKernels.BLOCK_ROWS + 29;
    assertMatmulAgrees(randomMatrix(DType.F16, rows, PanelKernels.K_CHUNK + 37, 2, 113), 129, 3);
  }

  /** Q8_0 weights quantized at load from random F32 ones: whole blocks of 32 columns. */
  private Matrix randomQ8Matrix(int rows, int cols, long seed) {
    return WeightFormat.Q8_0.convert(randomMatrix(DType.F32, rows, cols, 0, seed), arena);
  }

  @Test
  void q8_0MatmulMatchesReferenceForDecodeAndPrefill() {
    Matrix w = randomQ8Matrix(ROWS, 768, 53);
    for (int numTokens : new int[] {1, 2, 3, 4, 5, 9}) {
      assertMatmulAgrees(w, numTokens, 5);
    }
    assertMatmulAgrees(w, 1, 0, 1e6f);
    assertMatmulAgrees(w, 5, 0, 1e-30f);
    // decode reads four blocks per step, then single blocks: 800 columns are six steps and one block
    Matrix fourBlocksAndOne = randomQ8Matrix(9, 800, 57);
    assertMatmulAgrees(fourBlocksAndOne, 1, 0);
    assertMatmulAgrees(fourBlocksAndOne.colSlice(32, 32 + 736), 1, 3);
  }

  @Test
  void q8_0MatmulReadsRowAndBlockAlignedColumnSlices() {
    Matrix full = randomQ8Matrix(40, 768 + 64, 59);
    for (int rows : new int[] {1, 2, 3, 4, 5, 7, 19, 33, 40}) {
      assertMatmulAgrees(full.rowSlice(40 - rows, 40).colSlice(64, 64 + 512), 1, 0);
      assertMatmulAgrees(full.rowSlice(0, rows).colSlice(32, 32 + 768), 6, 1);
    }
  }

  @Test
  void q4_0MatmulMatchesReferenceForDecodePrefillAndPanels() {
    Matrix full = WeightFormat.Q4_0.convert(randomMatrix(DType.F32, 40, 768 + 64, 0, 73), arena);
    for (int rows : new int[] {1, 3, 4, 5, 19, 40}) {
      for (int numTokens : new int[] {1, 2, 5, 16, 70}) {
        assertMatmulAgrees(full.rowSlice(40 - rows, 40).colSlice(32, 32 + 768), numTokens, 1);
      }
    }
    assertMatmulAgrees(WeightFormat.Q4_0.convert(randomMatrix(DType.F32, 517, 96, 0, 79), arena), 1, 0);
    // as Q8_0: four blocks per decode step, then single blocks (800 = 6 x 128 + 32 columns)
    assertMatmulAgrees(WeightFormat.Q4_0.convert(randomMatrix(DType.F32, 9, 800, 0, 83), arena), 1, 2);
  }

  @ParameterizedTest
  @EnumSource(names = {"F32", "F16", "BF16"})
  void threeThreadsShareTheRowsOfDecodeAndFewTokenCalls(DType dtype) {
    // 517 rows: three ranges of whole 16-row blocks (176, 176, 165), each thread's taken from its back
    // by the others once done; a row no thread computed would stay 0, a wrong one would differ
    try (VectorKernels threeThreads = new VectorKernels(3)) {
      Matrix w = randomMatrix(dtype, 517, 768, 2, 67);
      for (int numTokens : new int[] {1, 3}) {
        float[] x = randomActivations(numTokens * w.cols(), 71);
        float[] expected = new float[numTokens * w.rows()];
        float[] actual = new float[expected.length];
        scalar.matmul(w, x, 0, expected, 0, numTokens);
        threeThreads.matmul(w, x, 0, actual, 0, numTokens);
        for (int i = 0; i < expected.length; i++) {
          assertThat(actual[i]).as("token %d row %d", i / w.rows(), i % w.rows())
              .isCloseTo(expected[i], org.assertj.core.data.Offset.offset(1e-3f * (1 + Math.abs(expected[i]))));
        }
      }
    }
  }

  @Test
  void multiThreadedQ8_0MatmulMatchesReference() {
    Matrix w = randomQ8Matrix(517, 768, 61);
    assertMatmulAgrees(w, 1, 0);
    assertMatmulAgrees(w, 7, 3);
  }

  @Test
  void siluMulAndQuickGeluMatchReferenceWithinAnUlpOfExp() {
    // odd sizes: vector body and scalar tail; above two chunks the call is split over the threads
    for (int size : new int[] {1, 37, 2 * (1 << 14) + 21}) {
      float[] gate = randomActivations(size + 3, 47);
      for (int i = 0; i < gate.length; i++) {
        gate[i] *= 12f; // exp over a wide range, both signs
      }
      float[] up = randomActivations(size + 5, 53);
      float[] expected = new float[size + 7];
      float[] actual = new float[size + 7];
      scalar.siluMul(gate, 3, up, 5, expected, 7, size);
      vector.siluMul(gate, 3, up, 5, actual, 7, size);
      assertCloseRelative(expected, actual);
      assertThat(actual[6]).isZero();

      float[] x = gate.clone();
      float[] y = gate.clone();
      scalar.quickGelu(x, 3, size);
      vector.quickGelu(y, 3, size);
      assertCloseRelative(x, y);
      assertThat(y[2]).isEqualTo(gate[2]); // nothing before the offset
    }
  }

  @ParameterizedTest
  @EnumSource(names = {"F32", "F16", "BF16"})
  void addBiasMatchesReferenceExactly(DType dtype) {
    Matrix bias = randomMatrix(dtype, 1, COLS + 3, 2, 89);
    float[] expected = randomActivations(4 + 5 * (COLS + 3), 97);
    float[] actual = expected.clone();
    scalar.addBias(expected, 4, bias, 5, COLS + 3);
    vector.addBias(actual, 4, bias, 5, COLS + 3);
    assertThat(actual).containsExactly(expected);
  }

  /**
   * Rows with a mean far from zero, one row and 45, 16-bit and float32 weights; the mean and the variance are summed in another order than the reference's running sums, which
   * moves each output by at most about 2 size 2^-24 |w| scale (|x - mean| + mean|x|), plus an ulp of
   * the affine step.
   */
  @ParameterizedTest
  @EnumSource(names = {"F32", "F16", "BF16"})
  void layerNormMatchesReferenceWithinSummationRounding(DType dtype) {
    Matrix weight = randomMatrix(dtype, 1, COLS, 2, 101);
    Matrix bias = randomMatrix(dtype, 1, COLS, 6, 103);
    for (int numTokens : new int[] {1, 45}) {
      float[] x = randomActivations(3 + numTokens * COLS, 107);
      for (int i = 0; i < x.length; i++) {
        x[i] = 3f + 2f * x[i];
      }
      float[] expected = new float[5 + numTokens * COLS];
      float[] actual = new float[5 + numTokens * COLS];
      java.util.Arrays.fill(actual, 0, 5, 9f);
      scalar.layerNorm(x, 3, weight, bias, 1e-6f, expected, 5, numTokens, COLS);
      vector.layerNorm(x, 3, weight, bias, 1e-6f, actual, 5, numTokens, COLS);
      assertThat(java.util.Arrays.copyOf(actual, 5)).containsOnly(9f); // nothing before the offset
      for (int t = 0; t < numTokens; t++) {
        double mean = 0;
        double meanAbs = 0;
        double variance = 0;
        for (int i = 0; i < COLS; i++) {
          mean += x[3 + t * COLS + i];
          meanAbs += Math.abs(x[3 + t * COLS + i]);
        }
        mean /= COLS;
        meanAbs /= COLS;
        for (int i = 0; i < COLS; i++) {
          variance += (x[3 + t * COLS + i] - mean) * (x[3 + t * COLS + i] - mean);
        }
        double scale = 1 / Math.sqrt(variance / COLS + 1e-6);
        for (int i = 0; i < COLS; i++) {
          int at = 5 + t * COLS + i;
          double bound = 2.0 * COLS * 0x1p-24 * Math.abs(weight.get(0, i)) * scale
              * (Math.abs(x[3 + t * COLS + i] - mean) + meanAbs) + 2 * Math.ulp(Math.abs(expected[at]));
          assertThat((double) Math.abs(actual[at] - expected[at])).as("row %d element %d", t, i)
              .isLessThanOrEqualTo(bound);
        }
      }
    }
  }

  /** Equal within a few float ulps, relative to the larger magnitude (the vector exp's error). */
  private static void assertCloseRelative(float[] expected, float[] actual) {
    for (int i = 0; i < expected.length; i++) {
      float scale = Math.max(Math.abs(expected[i]), Math.abs(actual[i]));
      assertThat(Math.abs(expected[i] - actual[i])).as("element %d", i).isLessThanOrEqualTo(4 * Math.ulp(scale));
    }
  }

  @Test
  void reductionsMatchReference() {
    float[] a = randomActivations(COLS + 9, 41);
    float[] b = randomActivations(COLS + 9, 43);
    assertThat(vector.dot(a, 3, b, 9, COLS)).isCloseTo(scalar.dot(a, 3, b, 9, COLS),
        org.assertj.core.data.Offset.offset(1e-3f));
    float[] y1 = b.clone();
    float[] y2 = b.clone();
    vector.axpy(0.37f, a, 5, y1, 2, COLS);
    scalar.axpy(0.37f, a, 5, y2, 2, COLS);
    assertThat(y1).containsExactly(y2);
    // F16 weights take the element loop; F32 (RmsNorm's own copy) the vector loop and its tail
    for (DType dtype : new DType[] {DType.F16, DType.F32}) {
      Matrix weight = randomMatrix(dtype, 1, COLS, dtype == DType.F32 ? 4 : 2, 47);
      float[] n1 = new float[COLS + 4];
      float[] n2 = new float[COLS + 4];
      vector.rmsNorm(a, 1, weight, 1e-5f, n1, 4, COLS);
      scalar.rmsNorm(a, 1, weight, 1e-5f, n2, 4, COLS);
      for (int i = 0; i < n1.length; i++) {
        // only the sum of squares is reordered: relative error of a few fp32 ulps.
        assertThat(n1[i]).isCloseTo(n2[i], org.assertj.core.data.Offset.offset(1e-6f * (1 + Math.abs(n2[i]))));
      }
    }
  }

  @Test
  void providerPicksTheConfiguredSetAndRejectsUnknownNames() {
    assertThat(KernelsProvider.KernelSet.parse("Scalar")).isEqualTo(KernelsProvider.KernelSet.SCALAR);
    assertThat(KernelsProvider.create(KernelsProvider.KernelSet.SCALAR, 1).name()).isEqualTo("scalar");
    assertThatThrownBy(() -> KernelsProvider.KernelSet.parse("gpu"))
        .hasMessageContaining("owlery.kernels").hasMessageContaining("gpu");
    // the engine's own tests run without engine-native: the set is named, and what it needs
    assertThat(KernelsProvider.KernelSet.parse("native")).isEqualTo(KernelsProvider.KernelSet.NATIVE);
    assertThat(KernelsProvider.KernelSet.parse("Native-BF16")).isEqualTo(KernelsProvider.KernelSet.NATIVE_BF16);
    for (KernelsProvider.KernelSet set : KernelsProvider.KernelSet.values()) {
      assertThat(KernelsProvider.KernelSet.parse(set.flagValue())).isEqualTo(set);
    }
    assertThat(KernelsProvider.KernelSet.NATIVE_BF16.flagValue()).isEqualTo("native-bf16");
    for (KernelsProvider.KernelSet set : List.of(KernelsProvider.KernelSet.NATIVE, KernelsProvider.KernelSet.NATIVE_BF16)) {
      assertThatThrownBy(() -> KernelsProvider.create(set, 1))
          .hasMessage("the native kernels need owlery-engine-native on the classpath, which this process lacks");
    }
  }

  @Test
  void autoIsTheDefaultAndTakesTheVectorKernelsWhereTheNativeOnesCannotRun() throws Exception {
    assertThat(System.getProperty(KernelsProvider.PROPERTY)).isNull();
    assertThat(KernelsProvider.configuredSet()).isEqualTo(KernelsProvider.KernelSet.AUTO);
    assertThat(KernelsProvider.KernelSet.parse(" AUTO ")).isEqualTo(KernelsProvider.KernelSet.AUTO);
    // without engine-native on the classpath (the engine's tests): the vector kernels
    try (VectorKernels kernels = (VectorKernels) KernelsProvider.create(KernelsProvider.KernelSet.AUTO, 2)) {
      assertThat(kernels.numThreads()).isEqualTo(2);
    }
    // with it, where it cannot run: the vector kernels too (the factory's reason is logged)
    NativeKernelsFactory missingCompiler = (threads, bf16Attention) -> {
      throw new IllegalStateException("the native kernels are compiled on first use, and cc cannot be run");
    };
    try (VectorKernels kernels = (VectorKernels) KernelsProvider.nativeOrVector(missingCompiler, 3)) {
      assertThat(kernels.numThreads()).isEqualTo(3);
    }
    // and where it runs, what the factory made
    Kernels made = new ScalarKernels();
    assertThat(KernelsProvider.nativeOrVector((threads, bf16Attention) -> made, 1)).isSameAs(made);
  }

  /**
   * Every row once, however many threads take part; a kernel that shares out work itself, called
   * from a row, runs on that row's thread alone and gives its product (up to the order of sums: the
   * vector kernels' rows are grouped from where a thread's range starts).
   */
  @Test
  void forEachRowVisitsEveryRowOnceAndKernelsCalledFromARowRunOnItsThread() {
    try (VectorKernels kernels = new VectorKernels(2)) {
      for (int numRows : new int[] {0, 1, 33, 511, 512, 513, 3000}) {
        java.util.concurrent.atomic.AtomicIntegerArray visits = new java.util.concurrent.atomic.AtomicIntegerArray(numRows);
        kernels.forEachRow(numRows, visits::incrementAndGet);
        for (int t = 0; t < numRows; t++) {
          assertThat(visits.get(t)).as("row %d of %d", t, numRows).isEqualTo(1);
        }
      }
      int wRows = 300; // a product large enough to be shared out when called on its own
      Matrix w = randomMatrix(DType.F32, wRows, COLS, 0, 37);
      int numRows = 600;
      float[] x = randomActivations(numRows * COLS, 38);
      float[] expected = new float[numRows * wRows];
      for (int t = 0; t < numRows; t++) {
        kernels.matmul(w, x, t * COLS, expected, t * wRows, 1);
      }
      float[] out = new float[numRows * wRows];
      kernels.forEachRow(numRows, t -> kernels.matmul(w, x, t * COLS, out, t * wRows, 1));
      for (int i = 0; i < out.length; i++) {
        assertThat(out[i]).as("output %d", i).isCloseTo(expected[i], org.assertj.core.data.Offset.offset(1e-4f));
      }
    }
  }

  /**
   * {@code auto} asks for BF16 prompts for Q8_0 and Q4_0 weights only; where the CPU refuses them,
   * it takes the native kernels without; where nothing native runs, the vector kernels.
   */
  @Test
  void autoAsksForBf16PromptsForQuantizedWeightsOnly() throws Exception {
    Kernels plain = new ScalarKernels();
    Kernels bf16 = new ScalarKernels();
    NativeKernelsFactory withBf16 = (threads, bf16Prompts) -> bf16Prompts ? bf16 : plain;
    for (WeightFormat format : WeightFormat.values()) {
      boolean quantized = format == WeightFormat.Q8_0 || format == WeightFormat.Q4_0;
      assertThat(KernelsProvider.auto(withBf16, 2, format)).as(format.flagName()).isSameAs(quantized ? bf16 : plain);
    }
    NativeKernelsFactory withoutBf16 = (threads, bf16Prompts) -> {
      if (bf16Prompts) {
        throw new IllegalStateException("native-bf16 needs AVX512_BF16, which this CPU does not report");
      }
      return plain;
    };
    assertThat(KernelsProvider.auto(withoutBf16, 2, WeightFormat.Q4_0)).isSameAs(plain);
    NativeKernelsFactory none = (threads, bf16Prompts) -> {
      throw new IllegalStateException("the native kernels are compiled on first use, and cc cannot be run");
    };
    try (VectorKernels kernels = (VectorKernels) KernelsProvider.auto(none, 3, WeightFormat.Q8_0)) {
      assertThat(kernels.numThreads()).isEqualTo(3);
    }
  }
}
