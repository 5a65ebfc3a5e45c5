package dev.owlery.engine.nativekernels;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.owlery.engine.kernel.AttentionMask;
import dev.owlery.engine.kernel.AttentionShape;
import dev.owlery.engine.kernel.KeyValueRows;
import dev.owlery.engine.kernel.Kernels;
import dev.owlery.engine.kernel.ScalarKernels;
import dev.owlery.engine.kernel.VectorKernels;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@code native-bf16}'s attention against the scalar reference, within a bound derived from rounding
 * its inputs to BF16; fewer queries than a prompt's, and {@code native} itself, keep the vector
 * kernels' float32 attention to the bit. On a CPU without AVX512_BF16 each test checks the refusal
 * instead.
 */
class Bf16AttentionTest {

  /** BF16's unit roundoff: 8 significant bits, rounded to nearest. */
  private static final double U = 0x1p-8;
  /** The kernel's exponential's relative error bound (its degree-5 polynomial and one constant for ln 2). */
  private static final double EXP_ERROR = 1e-5;

  private static NativeCpuLibrary library;

  @BeforeAll
  static void load() {
    library = NativeTesting.library();
  }

  /** One attention call's shape and data. */
  record Case(String name, int heads, int kvHeads, int headDim, AttentionMask mask, int queries, int keys, float qScale,
      int threads) {
    @Override
    public String toString() {
      return name;
    }
  }

  static Stream<Case> cases() {
    return Stream.of(
        // LLaMA-like grouped heads over a whole prompt: several query blocks per item on 2 threads
        new Case("32/4 heads x 128, causal prompt of 130", 32, 4, 128, AttentionMask.CAUSAL, 130, 130, 1f, 2),
        // a later chunk of a prompt: 16 queries after 84 cached keys; 48 wide (a head's last 48 dimensions)
        new Case("6/3 heads x 48, causal chunk 16 of 100", 6, 3, 48, AttentionMask.CAUSAL, 16, 100, 1f, 2),
        // the vision tower: no mask, an odd number of keys, tiny-owl2's width of 16, one thread
        new Case("4/4 heads x 16, unmasked 33", 4, 4, 16, AttentionMask.NONE, 33, 33, 1f, 1),
        // sharper softmax: scores four times larger
        new Case("8/2 heads x 64, causal 200, scores x4", 8, 2, 64, AttentionMask.CAUSAL, 200, 200, 4f, 2));
  }

  /**
   * Each score is off by at most delta = scale * sum_d |q_d k_d| * (2u + u^2) (q and k rounded, float32
   * sums besides), so each softmax weight, after normalising, by a factor within [a/b, b/a], where
   * b = e^delta (1 + u)(1 + 1e-5) and a = e^-delta (1 - u)(1 - 1e-5) (the weight's rounding and the
   * exponential's polynomial, owlery_cpu.c's exp_nonpositive); the values are rounded by u. An output then differs from the exact
   * one by at most max|v| (b/a - 1 + u b/a), plus float32 sums over the keys (keys x 2^-22 max|v|).
   */
  @ParameterizedTest(name = "{0}")
  @MethodSource("cases")
  void bf16AttentionStaysWithinItsRoundingOfTheScalarReference(Case c) {
    if (!library.hasBf16()) {
      assertRefused();
      return;
    }
    AttentionShape shape = new AttentionShape(c.heads(), c.kvHeads(), c.headDim(), (float) (1 / Math.sqrt(c.headDim())));
    SplittableRandom random = new SplittableRandom(c.headDim() * 31L + c.queries());
    float[] q = uniform(random, c.queries() * shape.rowWidth(), c.qScale());
    float[] k = uniform(random, c.keys() * c.kvHeads() * c.headDim(), 1f);
    float[] v = uniform(random, c.keys() * c.kvHeads() * c.headDim(), 1f);
    KeyValueRows kv = rows(k, v, c.kvHeads(), c.headDim());
    float[] expected = attention(new ScalarKernels(), c, shape, q, kv);
    float[] bf16;
    float[] vector;
    try (NativeKernels kernels = new NativeKernels(library, c.threads(), true, true, true)) {
      assertThat(kernels.name()).endsWith("-bf16");
      bf16 = attention(kernels, c, shape, q, kv);
    }
    try (VectorKernels kernels = new VectorKernels(c.threads())) {
      vector = attention(kernels, c, shape, q, kv);
    }
    double maxV = 0;
    for (float x : v) {
      maxV = Math.max(maxV, Math.abs(x));
    }
    double[] rounded = roundedInputsReference(c, shape, q, k, v);
    double worst = 0;
    double worstRounded = 0;
    for (int i = 0; i < c.queries(); i++) {
      int visible = c.mask() == AttentionMask.CAUSAL ? c.keys() - c.queries() + i + 1 : c.keys();
      for (int h = 0; h < c.heads(); h++) {
        int g = h / shape.groupSize();
        int row = i * shape.rowWidth() + h * c.headDim();
        double largest = 0;
        for (int j = 0; j < visible; j++) {
          double sum = 0;
          for (int d = 0; d < c.headDim(); d++) {
            sum += Math.abs(q[row + d] * k[(j * c.kvHeads() + g) * c.headDim() + d]);
          }
          largest = Math.max(largest, sum);
        }
        double delta = shape.scale() * largest * (2 * U + U * U);
        double b = Math.exp(delta) * (1 + U) * (1 + EXP_ERROR);
        double a = Math.exp(-delta) * (1 - U) * (1 - EXP_ERROR);
        double bound = maxV * (b / a - 1 + U * b / a + visible * 0x1p-22);
        // against the exact attention of the rounded queries, keys and values, what is left is the
        // weights' rounding (u, and EXP_ERROR for the exponential) and float32 sums: the scores' over
        // headDim products (delta'), the outputs' over the keys
        double deltaSums = shape.scale() * largest * c.headDim() * 0x1p-23;
        double uWeights = U + EXP_ERROR;
        double roundedBound = maxV * ((1 + uWeights) / (1 - uWeights) * Math.exp(2 * deltaSums) - 1 + visible * 0x1p-22);
        for (int d = 0; d < c.headDim(); d++) {
          double error = Math.abs(bf16[row + d] - expected[row + d]);
          worst = Math.max(worst, error / bound);
          assertThat(error).as("query %d head %d dimension %d", i, h, d).isLessThanOrEqualTo(bound);
          double roundedError = Math.abs(bf16[row + d] - rounded[row + d]);
          worstRounded = Math.max(worstRounded, roundedError / roundedBound);
          assertThat(roundedError).as("query %d head %d dimension %d, rounded inputs", i, h, d)
              .isLessThanOrEqualTo(roundedBound);
        }
      }
    }
    System.out.printf("%s: largest error %.3f of its bound, %.3f of the rounded inputs' bound%n", c, worst,
        worstRounded);
    assertThat(bf16).as("BF16 rounds: not the vector kernels' float32 results").isNotEqualTo(vector);
  }

  /** Decode (one query) and short chunks (15), and {@code native} without BF16, keep float32 to the bit. */
  @Test
  void fewQueriesAndPlainNativeKeepTheVectorKernelsAttention() {
    AttentionShape shape = new AttentionShape(8, 2, 64, 0.125f);
    SplittableRandom random = new SplittableRandom(7);
    int keys = 90;
    float[] k = uniform(random, keys * 2 * 64, 1f);
    float[] v = uniform(random, keys * 2 * 64, 1f);
    KeyValueRows kv = rows(k, v, 2, 64);
    for (int queries : new int[] {1, NativeKernels.BF16_ATTENTION_QUERIES - 1, 40}) {
      Case c = new Case("", 8, 2, 64, AttentionMask.CAUSAL, queries, keys, 1f, 2);
      float[] q = uniform(random, queries * shape.rowWidth(), 1f);
      float[] vector;
      try (VectorKernels kernels = new VectorKernels(2)) {
        vector = attention(kernels, c, shape, q, kv);
      }
      try (NativeKernels kernels = new NativeKernels(library, 2, true, true, false)) {
        assertThat(attention(kernels, c, shape, q, kv)).as("native, %d queries", queries).containsExactly(vector);
      }
      if (library.hasBf16() && queries < NativeKernels.BF16_ATTENTION_QUERIES) {
        try (NativeKernels kernels = new NativeKernels(library, 2, true, true, true)) {
          assertThat(attention(kernels, c, shape, q, kv)).as("native-bf16, %d queries", queries).containsExactly(vector);
        }
      }
    }
    if (!library.hasBf16()) {
      assertRefused();
    }
  }

  private static void assertRefused() {
    assertThatThrownBy(() -> new NativeKernels(library, 1, true, true, true))
        .isInstanceOf(NativeKernelsUnavailableException.class).hasMessageContaining("AVX512_BF16");
  }

  private static float[] attention(Kernels kernels, Case c, AttentionShape shape, float[] q, KeyValueRows kv) {
    // offsets in both arrays: the kernels must honour them
    int offset = 5;
    float[] qPadded = new float[offset + q.length];
    System.arraycopy(q, 0, qPadded, offset, q.length);
    float[] out = new float[offset + q.length + 3];
    kernels.attention(qPadded, offset, kv, shape, c.mask(), c.queries(), c.keys(), out, offset);
    return java.util.Arrays.copyOfRange(out, offset, offset + q.length);
  }

  /** Keys and values laid out as a cache would hand them over: position, kv head, dimension. */
  private static KeyValueRows rows(float[] k, float[] v, int kvHeads, int headDim) {
    return new KeyValueRows() {
      @Override
      public void readKeys(int kvHead, int from, int count, float[] dst, int dstOffset) {
        copy(k, kvHead, from, count, dst, dstOffset);
      }

      @Override
      public void readValues(int kvHead, int from, int count, float[] dst, int dstOffset) {
        copy(v, kvHead, from, count, dst, dstOffset);
      }

      private void copy(float[] src, int kvHead, int from, int count, float[] dst, int dstOffset) {
        for (int j = 0; j < count; j++) {
          System.arraycopy(src, ((from + j) * kvHeads + kvHead) * headDim, dst, dstOffset + j * headDim, headDim);
        }
      }
    };
  }

  /** The attention of q, k and v each rounded to BF16, in double, with the softmax exact. */
  private static double[] roundedInputsReference(Case c, AttentionShape shape, float[] q, float[] k, float[] v) {
    double[] out = new double[q.length];
    int hd = c.headDim();
    for (int i = 0; i < c.queries(); i++) {
      int visible = c.mask() == AttentionMask.CAUSAL ? c.keys() - c.queries() + i + 1 : c.keys();
      for (int h = 0; h < c.heads(); h++) {
        int g = h / shape.groupSize();
        int row = i * shape.rowWidth() + h * hd;
        double[] scores = new double[visible];
        double max = Double.NEGATIVE_INFINITY;
        for (int j = 0; j < visible; j++) {
          double sum = 0;
          for (int d = 0; d < hd; d++) {
            sum += (double) bf16(q[row + d]) * bf16(k[(j * c.kvHeads() + g) * hd + d]);
          }
          scores[j] = shape.scale() * sum;
          max = Math.max(max, scores[j]);
        }
        double total = 0;
        for (int j = 0; j < visible; j++) {
          scores[j] = Math.exp(scores[j] - max);
          total += scores[j];
        }
        for (int j = 0; j < visible; j++) {
          for (int d = 0; d < hd; d++) {
            out[row + d] += scores[j] / total * bf16(v[(j * c.kvHeads() + g) * hd + d]);
          }
        }
      }
    }
    return out;
  }

  /** x rounded to BF16 (8 significant bits, to nearest, ties to even), as a float. */
  private static float bf16(float x) {
    int bits = Float.floatToRawIntBits(x);
    return Float.intBitsToFloat((bits + 0x7FFF + ((bits >>> 16) & 1)) & 0xFFFF0000);
  }

  private static float[] uniform(SplittableRandom random, int n, float scale) {
    float[] x = new float[n];
    for (int i = 0; i < n; i++) {
      x[i] = (float) random.nextDouble(-scale, scale);
    }
    return x;
  }
}
