package dev.owlery.engine.onednn;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.owlery.engine.onednn.testing.OneDnnTesting;
import dev.owlery.engine.kernel.AttentionMask;
import dev.owlery.engine.kernel.AttentionShape;
import dev.owlery.engine.kernel.KeyValueRows;
import dev.owlery.engine.kernel.ScalarKernels;
import dev.owlery.engine.kernel.VectorKernels;
import dev.owlery.engine.tensor.DType;
import dev.owlery.engine.tensor.Matrix;
import dev.owlery.engine.tensor.WeightFormat;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * oneDNN's BF16 matmul held to its definition: each weight and activation rounded to bfloat16
 * ({@link Bf16}), the products summed exactly (in double here), within float32 summation error.
 */
class OneDnnKernelsTest {

  /**
   * float32 sums in some order differ from the exact sum by at most about n * 2^-24 * sum|w x|
   * (4,096 terms: 2.4e-4, the worst case); oneDNN's blocked sums stay far below, so 2e-5 of
   * sum|w x|. Rounding the activations to bfloat16 moves a result by about 2^-9 of sum|w x| / sqrt(n)
   * or more, which this bound catches (see {@link #theActivationsAreRoundedToBfloat16NotTruncated}).
   */
  private static final double RELATIVE_TOLERANCE = 2e-5;

  private final Arena arena = Arena.ofShared();

  @BeforeAll
  static void library() {
    OneDnnTesting.library();
  }

  @AfterEach
  void close() {
    arena.close();
  }

  private Matrix randomMatrix(DType dtype, int rows, int cols, long seed) {
    if (dtype == DType.Q8_0) {
      return WeightFormat.Q8_0.convert(randomMatrix(DType.F32, rows, cols, seed), arena);
    }
    MemorySegment segment = arena.allocate((long) rows * cols * dtype.byteSize(), 64);
    Random random = new Random(seed);
    ValueLayout.OfFloat f32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    ValueLayout.OfShort i16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    for (long i = 0; i < (long) rows * cols; i++) {
      float v = (float) random.nextGaussian() * 0.1f;
      switch (dtype) {
        case F32 -> segment.setAtIndex(f32, i, v);
        case F16 -> segment.setAtIndex(i16, i, Float.floatToFloat16(v));
        case BF16 -> segment.setAtIndex(i16, i, (short) (Float.floatToRawIntBits(v) >>> 16));
        default -> throw new IllegalArgumentException(dtype.toString());
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

  private static float bf16(float value) {
    return Float.intBitsToFloat(Bf16.round(value) << 16);
  }

  /** Asserts out[outOffset..] against the exact sums of the bfloat16-rounded operands. */
  private static void assertBf16Matmul(Matrix w, float[] x, int xOffset, float[] out, int outOffset, int numTokens) {
    for (int t = 0; t < numTokens; t++) {
      for (int r = 0; r < w.rows(); r++) {
        double sum = 0;
        double magnitude = 0;
        for (int c = 0; c < w.cols(); c++) {
          double product = (double) bf16(w.get(r, c)) * bf16(x[xOffset + t * w.cols() + c]);
          sum += product;
          magnitude += Math.abs(product);
        }
        assertThat((double) out[outOffset + t * w.rows() + r])
            .as("token %d row %d of %dx%d", t, r, w.rows(), w.cols())
            .isCloseTo(sum, org.assertj.core.data.Offset.offset(RELATIVE_TOLERANCE * magnitude + 1e-30));
      }
    }
  }

  @ParameterizedTest
  @EnumSource(names = {"F32", "F16", "BF16", "Q8_0"})
  void manyTokenMatmulsAreBf16ProductsSummedInFloat32(DType dtype) {
    try (OneDnnKernels kernels = new OneDnnKernels(2)) {
      Matrix w = randomMatrix(dtype, 70, 96, 3);
      int numTokens = 37;
      float[] x = randomActivations(5 + numTokens * 96, 4);
      float[] out = new float[3 + numTokens * 70 + 4];
      Arrays.fill(out, 42f);
      kernels.matmul(w, x, 5, out, 3, numTokens);
      assertBf16Matmul(w, x, 5, out, 3, numTokens);
      for (int i : new int[] {0, 1, 2, out.length - 4, out.length - 1}) {
        assertThat(out[i]).as("element %d outside the output", i).isEqualTo(42f);
      }
      assertThat(kernels.copiedWeightBytes()).isEqualTo(dtype == DType.BF16 ? 0 : 70L * 96 * 2);
    }
  }

  @ParameterizedTest
  @ValueSource(ints = {1, 2})
  void stridedViewsOfWeightsAreReadAsTheirElements(int numThreads) {
    try (OneDnnKernels kernels = new OneDnnKernels(numThreads)) {
      for (DType dtype : new DType[] {DType.BF16, DType.F16}) {
        Matrix full = randomMatrix(dtype, 90, 300, 5);
        // a row slice (column-parallel), then a column slice (row-parallel): a stride of 300
        Matrix view = full.rowSlice(7, 88).colSlice(13, 13 + 257);
        int numTokens = 16;
        float[] x = randomActivations(numTokens * 257, 6);
        float[] out = new float[numTokens * 81];
        kernels.matmul(view, x, 0, out, 0, numTokens);
        assertBf16Matmul(view, x, 0, out, 0, numTokens);
      }
    }
  }

  @Test
  void largeShapesOfTheVisionTower() {
    // the ViT's fc2 at a tenth of its tokens: 4,096 columns, sums of 4,096 bfloat16 products
    try (OneDnnKernels kernels = new OneDnnKernels(2)) {
      Matrix w = randomMatrix(DType.F16, 64, 4096, 8);
      int numTokens = 103;
      float[] x = randomActivations(numTokens * 4096, 9);
      float[] out = new float[numTokens * 64];
      kernels.matmul(w, x, 0, out, 0, numTokens);
      assertBf16Matmul(w, x, 0, out, 0, numTokens);
    }
  }

  @Test
  void theActivationsAreRoundedToBfloat16NotTruncated() {
    // Activations just above a tie: truncating them (or passing float32) lands about 2^-9 of
    // each value away, which the tolerance sees in the sum of 256 positive products.
    try (OneDnnKernels kernels = new OneDnnKernels(1)) {
      MemorySegment ones = arena.allocate(32L * 256 * 2, 64);
      for (long i = 0; i < 32L * 256; i++) {
        ones.setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i, (short) 0x3f80); // 1.0
      }
      Matrix w = new Matrix("ones", ones, DType.BF16, 32, 256, 256, 0);
      float[] x = new float[16 * 256];
      Arrays.fill(x, Float.intBitsToFloat(0x3f80c001)); // 1.0059 rounds up to 1.0078 (0x3f81)
      float[] out = new float[16 * 32];
      kernels.matmul(w, x, 0, out, 0, 16);
      assertThat(out).containsOnly(256 * Float.intBitsToFloat(0x3f810000));
      assertBf16Matmul(w, x, 0, out, 0, 16);
    }
  }

  @Test
  void fewerTokensThanTheThresholdStayWithTheVectorKernelsExactly() {
    try (OneDnnKernels kernels = new OneDnnKernels(2); VectorKernels vector = new VectorKernels(2)) {
      Matrix w = randomMatrix(DType.F16, 300, 128, 10);
      for (int numTokens = 1; numTokens < OneDnnKernels.MIN_TOKENS; numTokens += 7) {
        float[] x = randomActivations(numTokens * 128, numTokens);
        float[] expected = new float[numTokens * 300];
        float[] actual = new float[numTokens * 300];
        vector.matmul(w, x, 0, expected, 0, numTokens);
        kernels.matmul(w, x, 0, actual, 0, numTokens);
        assertThat(actual).as("%d tokens", numTokens).containsExactly(expected);
      }
      assertThat(kernels.copiedWeightBytes()).isZero();
    }
  }

  @Test
  void callersOnSeveralThreadsEachGetTheirOwnResult() throws Exception {
    try (OneDnnKernels kernels = new OneDnnKernels(2)) {
      Matrix w = randomMatrix(DType.F32, 64, 160, 12);
      ExecutorService callers = Executors.newFixedThreadPool(3);
      try {
        Future<?>[] done = new Future<?>[6];
        for (int i = 0; i < done.length; i++) {
          int seed = i;
          done[i] = callers.submit(() -> {
            int numTokens = 16 + seed * 5;
            float[] x = randomActivations(numTokens * 160, 100 + seed);
            float[] out = new float[numTokens * 64];
            for (int round = 0; round < 5; round++) {
              kernels.matmul(w, x, 0, out, 0, numTokens);
            }
            assertBf16Matmul(w, x, 0, out, 0, numTokens);
          });
        }
        for (Future<?> f : done) {
          f.get();
        }
      } finally {
        callers.shutdown();
      }
    }
  }

  /** Keys and values as rows of their own (kv head, position), as the vision tower hands them over. */
  private static KeyValueRows rows(float[] keys, float[] values, int numKvHeads, int numKeys, int headDim) {
    return new KeyValueRows() {
      @Override
      public void readKeys(int kvHead, int from, int count, float[] dst, int dstOffset) {
        System.arraycopy(keys, (kvHead * numKeys + from) * headDim, dst, dstOffset, count * headDim);
      }

      @Override
      public void readValues(int kvHead, int from, int count, float[] dst, int dstOffset) {
        System.arraycopy(values, (kvHead * numKeys + from) * headDim, dst, dstOffset, count * headDim);
      }
    };
  }

  @ParameterizedTest
  @CsvSource({"1, 37", "2, 37", "3, 37", "2, 300"})
  void attentionWithoutAMaskIsBf16ProductsAroundAFloat32Softmax(int numThreads, int numQueries) {
    // 6 heads over 3 kv heads (grouped), head width 40 (not a power of two: scale 1/sqrt(40)),
    // 37 queries (one block) or 300 (a block of 256 and one of 44) over 70 keys, outputs at an
    // offset, against the Bf16ReferenceKernels definition
    AttentionShape shape = new AttentionShape(6, 3, 40, (float) (1 / Math.sqrt(40)));
    int numKeys = 70;
    float[] q = randomActivations(3 + numQueries * shape.rowWidth(), 21);
    float[] keys = randomActivations(3 * numKeys * 40, 22);
    float[] values = randomActivations(3 * numKeys * 40, 23);
    KeyValueRows kv = rows(keys, values, 3, numKeys, 40);
    float[] expected = new float[5 + numQueries * shape.rowWidth()];
    float[] actual = expected.clone();
    new Bf16ReferenceKernels().attention(q, 3, kv, shape, AttentionMask.NONE, numQueries, numKeys, expected, 5);
    try (OneDnnKernels kernels = new OneDnnKernels(numThreads)) {
      kernels.attention(q, 3, kv, shape, AttentionMask.NONE, numQueries, numKeys, actual, 5);
    }
    float[] float32 = expected.clone();
    new ScalarKernels().attention(q, 3, kv, shape, AttentionMask.NONE, numQueries, numKeys, float32, 5);
    float maxDiff = 0;
    float fromFloat32 = 0;
    for (int i = 0; i < actual.length; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(actual[i] - expected[i]));
      fromFloat32 = Math.max(fromFloat32, Math.abs(actual[i] - float32[i]));
    }
    // A probability whose float32 value differs in the last bits from the definition's (scores summed
    // in another order) can round to the neighbouring bfloat16, moving an output by up to 2^-8 of
    // that probability times |v|: measured 4.6e-4 here. Bound: two such steps of the largest.
    double largestValue = 0;
    for (float v : values) {
      largestValue = Math.max(largestValue, Math.abs(v));
    }
    double bound = 2 * Math.scalb(largestProbability(q, 3, keys, shape, numQueries, numKeys), -8) * largestValue;
    assertThat(actual[0]).isZero();
    assertThat((double) maxDiff).as("from the bfloat16 definition").isLessThanOrEqualTo(bound);
    // and it is the bfloat16 arithmetic: float32's result is ten times farther (measured 4.5e-3);
    // leaving q, k, v or the probabilities unrounded lands between the two
    assertThat(fromFloat32).as("from float32").isGreaterThan(5 * maxDiff);
  }

  /** The largest softmax probability of the call, in double. */
  private static double largestProbability(float[] q, int qOffset, float[] keys, AttentionShape shape, int numQueries,
      int numKeys) {
    int d = shape.headDim();
    double largest = 0;
    for (int h = 0; h < shape.numHeads(); h++) {
      int keyBase = h / shape.groupSize() * numKeys * d;
      for (int i = 0; i < numQueries; i++) {
        double[] scores = new double[numKeys];
        double max = Double.NEGATIVE_INFINITY;
        for (int j = 0; j < numKeys; j++) {
          for (int c = 0; c < d; c++) {
            scores[j] += (double) q[qOffset + i * shape.rowWidth() + h * d + c] * keys[keyBase + j * d + c];
          }
          scores[j] *= shape.scale();
          max = Math.max(max, scores[j]);
        }
        double sum = 0;
        for (double score : scores) {
          sum += Math.exp(score - max);
        }
        largest = Math.max(largest, 1 / sum);
      }
    }
    return largest;
  }

  @Test
  void causalAndShortAttentionStayWithTheVectorKernelsExactly() {
    AttentionShape shape = new AttentionShape(4, 4, 16, 0.25f);
    try (OneDnnKernels kernels = new OneDnnKernels(2); VectorKernels vector = new VectorKernels(2)) {
      for (int[] call : new int[][] {{20, 20, 1}, {15, 40, 0}, {20, 15, 0}}) {
        AttentionMask mask = call[2] == 1 ? AttentionMask.CAUSAL : AttentionMask.NONE;
        float[] q = randomActivations(call[0] * 64, 31);
        KeyValueRows kv = rows(randomActivations(4 * call[1] * 16, 32), randomActivations(4 * call[1] * 16, 33), 4,
            call[1], 16);
        float[] expected = new float[call[0] * 64];
        float[] actual = new float[call[0] * 64];
        vector.attention(q, 0, kv, shape, mask, call[0], call[1], expected, 0);
        kernels.attention(q, 0, kv, shape, mask, call[0], call[1], actual, 0);
        assertThat(actual).as("%s, %d queries, %d keys", mask, call[0], call[1]).containsExactly(expected);
      }
    }
  }

  @Test
  void theSoftmaxScalesTheScoresAndSumsToOne() {
    // rows of 1 to 70 scores (vector body and scalar tail), scale 1/sqrt(40), against double arithmetic
    Random random = new Random(41);
    float scale = (float) (1 / Math.sqrt(40));
    for (int size = 1; size <= 70; size += 3) {
      float[] x = new float[size + 2];
      for (int i = 0; i < x.length; i++) {
        x[i] = (float) random.nextGaussian() * 20;
      }
      double max = Double.NEGATIVE_INFINITY;
      for (int i = 1; i <= size; i++) {
        max = Math.max(max, x[i]);
      }
      double[] expected = new double[size];
      double[] arguments = new double[size];
      double sum = 0;
      for (int i = 0; i < size; i++) {
        arguments[i] = Math.abs(scale * (x[i + 1] - max));
        expected[i] = Math.exp(scale * (x[i + 1] - max));
        sum += expected[i];
      }
      float before = x[0];
      float after = x[size + 1];
      OneDnnAttention.softmax(x, 1, size, scale);
      for (int i = 0; i < size; i++) {
        // float32 rounds the argument scale * (x - max) to 2^-24 of itself, which exp turns into as
        // much relative error; a few ulp more for exp, the sum and the division
        double p = expected[i] / sum;
        assertThat((double) x[i + 1]).as("size %d element %d", size, i)
            .isCloseTo(p, org.assertj.core.data.Offset.offset(p * (arguments[i] + 4) * 0x1p-23));
      }
      assertThat(x[0]).isEqualTo(before);
      assertThat(x[size + 1]).isEqualTo(after);
    }
  }

  @Test
  void outputsOutsideTheArraysAreRefusedBeforeTheLibraryIsCalled() {
    try (OneDnnKernels kernels = new OneDnnKernels(1)) {
      Matrix w = randomMatrix(DType.F32, 8, 32, 13);
      assertThatThrownBy(() -> kernels.matmul(w, new float[16 * 32], 0, new float[16 * 8 - 1], 0, 16))
          .isInstanceOf(IndexOutOfBoundsException.class);
      assertThatThrownBy(() -> kernels.matmul(w, new float[16 * 32], 1, new float[16 * 8], 0, 16))
          .isInstanceOf(IndexOutOfBoundsException.class);
    }
  }

  @Test
  void aMissingLibraryIsNamedWithWhatToInstall() {
    assertThatThrownBy(() -> OneDnnLibrary.open(List.of("libdnnl-absent.so.9", "libdnnl-absent.so.8"), "libgomp.so.1"))
        .isInstanceOf(OneDnnUnavailableException.class)
        .hasMessage("oneDNN kernels need libdnnl-absent.so.9 or libdnnl-absent.so.8, which the dynamic linker cannot "
            + "find: install oneDNN (Debian 12: apt-get install libdnnl2; later releases: libdnnl3)");
  }

  @Test
  void theLibraryNamesItsVersionAndInstructionSet() {
    OneDnnLibrary library = OneDnnTesting.library();
    assertThat(library.version()).matches("[23]\\.\\d+\\.\\d+");
    assertThat(library.cpuIsa()).isNotBlank();
  }
}
