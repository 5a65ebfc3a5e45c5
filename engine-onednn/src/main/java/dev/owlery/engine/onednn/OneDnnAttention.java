package dev.owlery.engine.onednn;

import dev.owlery.engine.kernel.AttentionShape;
import dev.owlery.engine.kernel.KeyValueRows;
import java.lang.foreign.MemorySegment;
import jdk.incubator.vector.FloatVector;
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
   * the exponentials a vector at a time ({@code VectorOperators.EXP}; a degree-7 polynomial in its
   * place measured the same, 0.52-0.59 s of attention per image either way). Scaling here rather than in
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
      FloatVector e = FloatVector.fromArray(F, x, i).sub(max).mul(scale).lanewise(VectorOperators.EXP);
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
