package dev.owlery.engine.onednn;

import dev.owlery.engine.kernel.AttentionShape;
import dev.owlery.engine.kernel.KeyValueRows;
import java.lang.foreign.MemorySegment;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Attention in which every query sees every key (the vision tower's and the abstractor's), head by
 * head as two BF16 GEMMs on oneDNN: {@code scores = q k^T} with float32 sums, the softmax of each
 * row of {@code scale * scores} in float32, then {@code out = p v} with p, the probabilities,
 * rounded to bfloat16 as q, k and v are. This is PyTorch's BF16 eager attention
 * ({@code softmax(q @ k.T * scale) @ v}) but for the scores, which stay float32 here.
 *
 * <p>The heads are shared out over the kernels' threads, each running its own GEMMs on one OpenMP
 * thread and its own softmax, so the softmax runs on every thread too.
 */
final class OneDnnAttention {

  private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;

  /**
   * Queries per pass of a head: a block's scores (256 x 1,089 floats, 1.1 MB) stay in L2 from the
   * GEMM that writes them through the softmax to the GEMM that reads their probabilities.
   */
  static final int QUERY_BLOCK = 256;

  private final OneDnnLibrary library;
  private final ThreadTeam team;
  private final ThreadLocal<Scratch> scratch = ThreadLocal.withInitial(Scratch::new);

  OneDnnAttention(OneDnnLibrary library, ThreadTeam team) {
    this.library = library;
    this.team = team;
  }

  /** {@code Kernels.attention} with {@code AttentionMask.NONE}. */
  void run(float[] q, int qOffset, KeyValueRows kv, AttentionShape shape, int numQueries, int numKeys, float[] out,
      int outOffset) {
    team.run(shape.numHeads(), h -> {
      Scratch s = scratch.get();
      s.ensure(Math.min(numQueries, QUERY_BLOCK), numKeys, shape.headDim());
      head(h, s, q, qOffset, kv, shape, numQueries, numKeys, out, outOffset);
    });
  }

  private void head(int h, Scratch s, float[] q, int qOffset, KeyValueRows kv, AttentionShape shape, int numQueries,
      int numKeys, float[] out, int outOffset) {
    int d = shape.headDim();
    int width = shape.rowWidth();
    int kvHead = h / shape.groupSize();
    kv.readKeys(kvHead, 0, numKeys, s.rows, 0);
    Bf16.round(s.rows, 0, s.keys, 0, numKeys * d);
    kv.readValues(kvHead, 0, numKeys, s.rows, 0);
    Bf16.round(s.rows, 0, s.values, 0, numKeys * d);
    for (int first = 0; first < numQueries; first += QUERY_BLOCK) {
      int m = Math.min(QUERY_BLOCK, numQueries - first);
      for (int i = 0; i < m; i++) {
        Bf16.round(q, qOffset + (first + i) * width + h * d, s.queries, i * d, d);
      }
      library.gemmBf16TransposedB(m, numKeys, d, MemorySegment.ofArray(s.queries), d, MemorySegment.ofArray(s.keys), d,
          MemorySegment.ofArray(s.scores), numKeys, 1);
      for (int i = 0; i < m; i++) {
        softmax(s.scores, i * numKeys, numKeys, shape.scale());
        Bf16.round(s.scores, i * numKeys, s.probabilities, i * numKeys, numKeys); // the row is still in L1
      }
      MemorySegment c = MemorySegment.ofArray(out).asSlice((long) (outOffset + first * width + h * d) * Float.BYTES);
      library.gemmBf16(m, d, numKeys, MemorySegment.ofArray(s.probabilities), numKeys, MemorySegment.ofArray(s.values),
          d, c, width, 1);
    }
  }

  /**
   * In-place softmax of one row of unscaled scores: {@code exp(scale * (x - max)) / sum}, float32,
   * the exponentials a vector at a time ({@link #expOfNonPositive}). Scaling here rather than in
   * the GEMM keeps oneDNN on its fast path; it differs from scaling each score first (the reference)
   * by rounding only, as max(scale * x) = scale * max(x) for scale > 0.
   */
  static void softmax(float[] x, int offset, int size, float scale) {
    int lanes = F.length();
    int end = offset + size;
    FloatVector maxes = FloatVector.broadcast(F, Float.NEGATIVE_INFINITY);
    int i = offset;
    for (; i <= end - lanes; i += lanes) {
      maxes = maxes.max(FloatVector.fromArray(F, x, i));
    }
    float max = maxes.reduceLanes(VectorOperators.MAX);
    for (; i < end; i++) {
      max = Math.max(max, x[i]);
    }
    FloatVector sums = FloatVector.zero(F);
    i = offset;
    for (; i <= end - lanes; i += lanes) {
      FloatVector e = expOfNonPositive(FloatVector.fromArray(F, x, i).sub(max).mul(scale));
      e.intoArray(x, i);
      sums = sums.add(e);
    }
    float sum = sums.reduceLanes(VectorOperators.ADD);
    for (; i < end; i++) {
      x[i] = (float) Math.exp((x[i] - max) * scale);
      sum += x[i];
    }
    i = offset;
    for (; i <= end - lanes; i += lanes) {
      FloatVector.fromArray(F, x, i).div(sum).intoArray(x, i);
    }
    for (; i < end; i++) {
      x[i] /= sum;
    }
  }

  private static final float LOG2_E = 1.44269504f;
  private static final float LN2_HIGH = 0.693145752f; // ln 2 to 16 bits: n * LN2_HIGH is exact for |n| <= 127
  private static final float LN2_LOW = 1.42860677e-6f;
  private static final float ROUNDING = 12582912f; // 1.5 * 2^23: adding it rounds to an integer
  private static final float LOWEST = -87.33f; // exp(LOWEST) is just above Float.MIN_NORMAL

  /**
   * {@code exp(x)} for {@code x <= 0} within 2 ulp of {@code Math.exp} (a softmax's shifted
   * scores): {@code 2^n * e^r} with {@code n = round(x / ln 2)}, {@code |r| <= ln 2 / 2} and a
   * degree-7 Taylor polynomial for {@code e^r} (its remainder, 5e-9, is far below one ulp; degree 6
   * left 1.2e-7, two ulp near 0.7). Below
   * -87.33 it returns exp(-87.33) = 1.2e-38 instead of a smaller number or 0: next to the row's
   * largest term, 1, that changes no float sum. {@code VectorOperators.EXP} took 1.7 ns per element,
   * most of the softmax and a third of the attention; this is a handful of FMAs a vector.
   */
  static FloatVector expOfNonPositive(FloatVector x) {
    FloatVector clamped = x.max(LOWEST);
    FloatVector shifted = clamped.fma(LOG2_E, ROUNDING);
    FloatVector n = shifted.sub(ROUNDING);
    FloatVector r = clamped.sub(n.mul(LN2_HIGH)); // n * LN2_HIGH is exact
    r = n.fma(FloatVector.broadcast(F, -LN2_LOW), r);
    FloatVector p = r.fma(FloatVector.broadcast(F, 1f / 5040), FloatVector.broadcast(F, 1f / 720));
    p = p.fma(r, FloatVector.broadcast(F, 1f / 120));
    p = p.fma(r, FloatVector.broadcast(F, 1f / 24));
    p = p.fma(r, FloatVector.broadcast(F, 1f / 6));
    p = p.fma(r, FloatVector.broadcast(F, 0.5f));
    p = p.fma(r, FloatVector.broadcast(F, 1f));
    p = p.fma(r, FloatVector.broadcast(F, 1f));
    IntVector exponent = shifted.reinterpretAsInts().sub(Float.floatToRawIntBits(ROUNDING)).add(127)
        .lanewise(VectorOperators.LSHL, 23);
    return p.mul(exponent.reinterpretAsFloats());
  }

  /** One thread's buffers, grown to the largest call it has run. */
  private static final class Scratch {
    float[] rows = new float[0];
    short[] queries = new short[0];
    short[] keys = new short[0];
    short[] values = new short[0];
    float[] scores = new float[0];
    short[] probabilities = new short[0];

    void ensure(int numQueries, int numKeys, int headDim) {
      if (rows.length < numKeys * headDim) {
        rows = new float[numKeys * headDim];
        keys = new short[numKeys * headDim];
        values = new short[numKeys * headDim];
      }
      if (queries.length < numQueries * headDim) {
        queries = new short[numQueries * headDim];
      }
      if (scores.length < numQueries * numKeys) {
        scores = new float[numQueries * numKeys];
        probabilities = new short[numQueries * numKeys];
      }
    }
  }
}
