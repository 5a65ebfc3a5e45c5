package dev.owlery.engine.kernel;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Holds the blocked, multi-threaded {@link VectorKernels#attention} to the plain
 * {@link ScalarKernels#attention} on random inputs: head sizes that are not multiples of any vector
 * width, key counts that are not multiples of the key block, grouped-query heads, both masks, and
 * offsets into larger arrays.
 */
class AttentionKernelTest {

  /**
   * Outputs are convex combinations of values in [-1, 1]; the blocked kernel sums the softmax block
   * by block and rescales as the max grows, so it agrees with the reference to float32 rounding of
   * sums of a few hundred terms, not bit for bit.
   */
  private static final double TOLERANCE = 1e-5;

  private final VectorKernels oneThread = new VectorKernels(1);
  private final VectorKernels threeThreads = new VectorKernels(3);
  private final ScalarKernels scalar = new ScalarKernels();

  @AfterEach
  void close() {
    oneThread.close();
    threeThreads.close();
  }

  /** Keys and values of {@code numKvHeads} heads as rows {@code [numKeys, numKvHeads * headDim]}. */
  private record ArrayKeyValues(float[] keys, float[] values, int numKvHeads, int headDim) implements KeyValueRows {
    @Override
    public void readKeys(int kvHead, int from, int count, float[] dst, int dstOffset) {
      copy(keys, kvHead, from, count, dst, dstOffset);
    }

    @Override
    public void readValues(int kvHead, int from, int count, float[] dst, int dstOffset) {
      copy(values, kvHead, from, count, dst, dstOffset);
    }

    private void copy(float[] data, int kvHead, int from, int count, float[] dst, int dstOffset) {
      for (int k = 0; k < count; k++) {
        System.arraycopy(data, ((from + k) * numKvHeads + kvHead) * headDim, dst, dstOffset + k * headDim, headDim);
      }
    }
  }

  private static float[] random(Random random, int n, float scale) {
    float[] x = new float[n];
    for (int i = 0; i < n; i++) {
      x[i] = scale * (2 * random.nextFloat() - 1);
    }
    return x;
  }

  @ParameterizedTest(name = "{0} heads / {1} kv heads, headDim {2}, {3} queries over {4} keys, {5}")
  @CsvSource({
      "1, 1, 8, 1, 1, CAUSAL",
      "4, 4, 37, 1, 130, CAUSAL", // decode: one query at the last position
      "6, 2, 37, 29, 29, CAUSAL", // prefill of a whole prompt, GQA 3:1
      "4, 2, 64, 40, 150, CAUSAL", // a chunk after 110 cached positions, crosses key blocks
      "32, 1, 16, 5, 67, CAUSAL", // multi-query: one item holds all 32 heads of a query
      "3, 3, 128, 9, 157, NONE", // the abstractor's shape: few queries over many keys
      "2, 2, 19, 65, 65, NONE", // the vision tower's shape: every token over every token
      "16, 16, 8, 200, 200, NONE", // many heads: an item is every query block of a head (1 thread)
      "8, 4, 16, 300, 320, CAUSAL", // items of several query blocks under a causal mask, GQA 2:1
  })
  void blockedAttentionMatchesTheReference(int numHeads, int numKvHeads, int headDim, int numQueries, int numKeys,
      AttentionMask mask) {
    Random random = new Random(numHeads * 1000L + headDim * 31L + numKeys);
    AttentionShape shape = new AttentionShape(numHeads, numKvHeads, headDim, (float) (1 / Math.sqrt(headDim)));
    int qOffset = 3;
    float[] q = random(random, qOffset + numQueries * shape.rowWidth(), 4f); // scores up to ~10: a peaked softmax
    KeyValueRows kv = new ArrayKeyValues(random(random, numKeys * numKvHeads * headDim, 4f),
        random(random, numKeys * numKvHeads * headDim, 1f), numKvHeads, headDim);
    int outOffset = 5;
    float[] expected = new float[outOffset + numQueries * shape.rowWidth()];
    float[] blocked = expected.clone();
    float[] threaded = expected.clone();

    scalar.attention(q, qOffset, kv, shape, mask, numQueries, numKeys, expected, outOffset);
    oneThread.attention(q, qOffset, kv, shape, mask, numQueries, numKeys, blocked, outOffset);
    threeThreads.attention(q, qOffset, kv, shape, mask, numQueries, numKeys, threaded, outOffset);

    assertThat(maxAbsDiff(expected, blocked)).isLessThan(TOLERANCE);
    assertThat(maxAbsDiff(expected, threaded)).isLessThan(TOLERANCE);
    assertThat(blocked[outOffset - 1]).isZero(); // nothing written before the output rows
  }

  private static double maxAbsDiff(float[] a, float[] b) {
    double max = 0;
    for (int i = 0; i < a.length; i++) {
      max = Math.max(max, Math.abs(a[i] - b[i]));
    }
    return max;
  }

  @ParameterizedTest(name = "{0}")
  @CsvSource({"vector", "scalar"})
  void attentionTimeCountsEveryCallUntilReset(String kernelSet) {
    Kernels kernels = kernelSet.equals("vector") ? oneThread : scalar;
    AttentionShape shape = new AttentionShape(2, 1, 8, 1f);
    KeyValueRows kv = new ArrayKeyValues(new float[8 * 300], new float[8 * 300], 1, 8);
    AttentionTime.reset();
    assertThat(AttentionTime.nanos()).isZero();
    kernels.attention(new float[16 * 300], 0, kv, shape, AttentionMask.CAUSAL, 300, 300, new float[16 * 300], 0);
    assertThat(AttentionTime.nanos()).isPositive();
    AttentionTime.reset();
    assertThat(AttentionTime.nanos()).isZero();
  }

  @ParameterizedTest(name = "{0}")
  @CsvSource({"vector", "scalar"})
  void aCausalCallWithMoreQueriesThanKeysIsRefused(String kernelSet) {
    Kernels kernels = kernelSet.equals("vector") ? oneThread : scalar;
    AttentionShape shape = new AttentionShape(2, 1, 8, 1f);
    KeyValueRows kv = new ArrayKeyValues(new float[8 * 3], new float[8 * 3], 1, 8);
    assertThatThrownBy(() -> kernels.attention(new float[16 * 4], 0, kv, shape, AttentionMask.CAUSAL, 4, 3,
        new float[16 * 4], 0))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("attention needs numQueries >= 0, numKeys >= 1 and, with a causal mask, numQueries <= numKeys. "
            + "Given: numQueries=4 numKeys=3 mask=CAUSAL");
  }
}
