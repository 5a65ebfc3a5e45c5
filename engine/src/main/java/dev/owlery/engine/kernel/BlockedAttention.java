package dev.owlery.engine.kernel;

import java.util.Arrays;
import java.util.concurrent.atomic.AtomicInteger;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@link Kernels#attention} with the Vector API, blocked as FlashAttention is: the work is split into
 * items of one kv head by a block of queries (every query head of that kv head), spread over a
 * {@link ComputePool}; an item walks the keys in blocks of {@value #KEY_BLOCK}, widens and
 * transposes each key block once into a tile that stays in L1 for all of the item's query rows, and
 * keeps a running max and sum per row (online softmax), so no score row longer than a key block is
 * ever materialised. The reference is {@link ScalarKernels#attention}: same result up to float32
 * rounding (the softmax is summed block by block, and the scores are rescaled as the max grows).
 *
 * <p>Measured through {@link AttentionTime} (which {@code owlery bench} can report): a 2,048-token
 * prefill of one LLaMA-2-7B-shaped layer (F16 weights and KV cache, 2 threads, AVX-512, on a
 * shared, loaded machine) spent 5.5-10% of its wall time in attention; one ViT-L/14 448 layer's
 * attention (1,025 tokens, 16 heads of 64) ran at about half the matmul kernels' GFLOP/s, 20-30% of
 * the layer. Items of 64 rows rather than 32 halve the key tile's widening and transposing per
 * query row (the ViT layer's share went from about 30% to about 22% in the same conditions).
 */
final class BlockedAttention {

  private static final VectorSpecies<Float> F = VectorMatmul.F;
  private static final int L = F.length();
  /** Keys per block: four vectors of scores at the widest shape (512 bits). */
  static final int KEY_BLOCK = 64;
  /** Query rows (query x head of one kv head) an item holds at most, unless one query has more heads. */
  static final int ROWS_PER_ITEM = 64;
  /** Below this many multiply-adds a call runs on the calling thread only. */
  private static final long PARALLEL_THRESHOLD = 1L << 16;

  static {
    if (KEY_BLOCK % (4 * L) != 0) {
      throw new IllegalStateException("the key block of %d is not a multiple of four %d-lane vectors".formatted(KEY_BLOCK, L));
    }
  }

  private final ComputePool pool;
  private final ThreadLocal<Call> calls = ThreadLocal.withInitial(Call::new);
  private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

  BlockedAttention(ComputePool pool) {
    this.pool = pool;
  }

  void run(float[] q, int qOffset, KeyValueRows kv, AttentionShape shape, AttentionMask mask, int numQueries,
      int numKeys, float[] out, int outOffset) {
    if (numQueries == 0) {
      return;
    }
    Call call = calls.get();
    call.prepare(q, qOffset, kv, shape, mask, numQueries, numKeys, out, outOffset);
    try {
      long work = (long) shape.numHeads() * numQueries * numKeys * shape.headDim();
      if (work < PARALLEL_THRESHOLD || pool.numThreads() == 1 || call.numItems == 1) {
        call.runShare();
      } else {
        pool.run(call);
      }
    } finally {
      call.clear();
    }
  }

  /** One thread's reusable call: items are claimed one at a time by every thread of the pool. */
  private static final class Call implements ComputePool.SharedTask {
    private final AtomicInteger nextItem = new AtomicInteger();
    private float[] q;
    private int qOffset;
    private KeyValueRows kv;
    private AttentionShape shape;
    private AttentionMask mask;
    private int numQueries;
    private int numKeys;
    private float[] out;
    private int outOffset;
    private int queriesPerItem;
    private int numQueryBlocks;
    private int numItems;

    void prepare(float[] q, int qOffset, KeyValueRows kv, AttentionShape shape, AttentionMask mask, int numQueries,
        int numKeys, float[] out, int outOffset) {
      this.q = q;
      this.qOffset = qOffset;
      this.kv = kv;
      this.shape = shape;
      this.mask = mask;
      this.numQueries = numQueries;
      this.numKeys = numKeys;
      this.out = out;
      this.outOffset = outOffset;
      this.queriesPerItem = Math.max(1, ROWS_PER_ITEM / shape.groupSize());
      this.numQueryBlocks = Math.ceilDiv(numQueries, queriesPerItem);
      this.numItems = numQueryBlocks * shape.numKvHeads();
      nextItem.set(0); // volatile write publishes the fields above to the workers
    }

    void clear() {
      q = null;
      kv = null;
      out = null;
    }

    @Override
    public void runShare() {
      Scratch scratch = SCRATCH.get();
      for (int item = nextItem.getAndIncrement(); item < numItems; item = nextItem.getAndIncrement()) {
        // the last query blocks see the most keys under a causal mask: hand them out first
        int queryBlock = numQueryBlocks - 1 - item / shape.numKvHeads();
        int kvHead = item % shape.numKvHeads();
        int first = queryBlock * queriesPerItem;
        attendBlock(scratch, kvHead, first, Math.min(numQueries, first + queriesPerItem));
      }
    }

    /** Queries {@code [first, end)}, every query head of {@code kvHead}, over the keys they see. */
    private void attendBlock(Scratch s, int kvHead, int first, int end) {
      int headDim = shape.headDim();
      int groupSize = shape.groupSize();
      int numRows = (end - first) * groupSize;
      s.ensure(numRows, headDim);
      Arrays.fill(s.rowMax, 0, numRows, Float.NEGATIVE_INFINITY);
      Arrays.fill(s.rowSum, 0, numRows, 0f);
      Arrays.fill(s.acc, 0, numRows * headDim, 0f);
      int keyLimit = AttentionShape.visibleKeys(mask, end - 1, numQueries, numKeys);
      for (int keyStart = 0; keyStart < keyLimit; keyStart += KEY_BLOCK) {
        int numBlockKeys = Math.min(KEY_BLOCK, keyLimit - keyStart);
        loadKeyTile(s, kvHead, keyStart, numBlockKeys, headDim);
        kv.readValues(kvHead, keyStart, numBlockKeys, s.values, 0);
        for (int i = first; i < end; i++) {
          int visible = Math.min(numBlockKeys, AttentionShape.visibleKeys(mask, i, numQueries, numKeys) - keyStart);
          if (visible <= 0) {
            continue;
          }
          for (int g = 0; g < groupSize; g++) {
            int row = (i - first) * groupSize + g;
            int qRow = qOffset + i * shape.rowWidth() + (kvHead * groupSize + g) * headDim;
            scores(s, qRow, headDim, visible);
            accumulate(s, row, headDim, visible);
          }
        }
      }
      for (int i = first; i < end; i++) {
        for (int g = 0; g < groupSize; g++) {
          int row = (i - first) * groupSize + g;
          int outRow = outOffset + i * shape.rowWidth() + (kvHead * groupSize + g) * headDim;
          float inverse = 1f / s.rowSum[row];
          for (int d = 0; d < headDim; d++) {
            out[outRow + d] = s.acc[row * headDim + d] * inverse;
          }
        }
      }
    }

    /** Keys {@code [keyStart, keyStart + numBlockKeys)} into {@code s.keysTransposed} as [headDim, KEY_BLOCK], zero past the last key. */
    private void loadKeyTile(Scratch s, int kvHead, int keyStart, int numBlockKeys, int headDim) {
      kv.readKeys(kvHead, keyStart, numBlockKeys, s.keys, 0);
      for (int j = 0; j < numBlockKeys; j++) {
        for (int d = 0; d < headDim; d++) {
          s.keysTransposed[d * KEY_BLOCK + j] = s.keys[j * headDim + d];
        }
      }
      if (numBlockKeys < KEY_BLOCK) {
        for (int d = 0; d < headDim; d++) {
          Arrays.fill(s.keysTransposed, d * KEY_BLOCK + numBlockKeys, (d + 1) * KEY_BLOCK, 0f);
        }
      }
    }

    /** {@code s.scores[j] = scale * q . k_j} for the tile's keys, four vectors of keys at a time; -inf past {@code visible}. */
    private void scores(Scratch s, int qRow, int headDim, int visible) {
      float[] kt = s.keysTransposed;
      for (int c = 0; c < KEY_BLOCK; c += 4 * L) {
        FloatVector acc0 = FloatVector.zero(F);
        FloatVector acc1 = FloatVector.zero(F);
        FloatVector acc2 = FloatVector.zero(F);
        FloatVector acc3 = FloatVector.zero(F);
        for (int d = 0; d < headDim; d++) {
          FloatVector qd = FloatVector.broadcast(F, q[qRow + d]);
          int base = d * KEY_BLOCK + c;
          acc0 = FloatVector.fromArray(F, kt, base).fma(qd, acc0);
          acc1 = FloatVector.fromArray(F, kt, base + L).fma(qd, acc1);
          acc2 = FloatVector.fromArray(F, kt, base + 2 * L).fma(qd, acc2);
          acc3 = FloatVector.fromArray(F, kt, base + 3 * L).fma(qd, acc3);
        }
        float scale = shape.scale();
        acc0.mul(scale).intoArray(s.scores, c);
        acc1.mul(scale).intoArray(s.scores, c + L);
        acc2.mul(scale).intoArray(s.scores, c + 2 * L);
        acc3.mul(scale).intoArray(s.scores, c + 3 * L);
      }
      Arrays.fill(s.scores, visible, KEY_BLOCK, Float.NEGATIVE_INFINITY);
    }

    /**
     * Online softmax step of one row: raises its max to cover the block's scores, rescales the sum
     * and the weighted values so far by {@code exp(oldMax - newMax)}, then adds {@code exp(s_j - newMax)}
     * and {@code exp(s_j - newMax) v_j} for the block's keys.
     */
    private void accumulate(Scratch s, int row, int headDim, int visible) {
      float[] scores = s.scores;
      FloatVector maxVector = FloatVector.fromArray(F, scores, 0);
      for (int c = L; c < KEY_BLOCK; c += L) {
        maxVector = maxVector.max(FloatVector.fromArray(F, scores, c));
      }
      float oldMax = s.rowMax[row];
      float newMax = Math.max(oldMax, maxVector.reduceLanes(VectorOperators.MAX));
      float rescale = (float) Math.exp(oldMax - newMax);
      FloatVector sumVector = FloatVector.zero(F);
      for (int c = 0; c < KEY_BLOCK; c += L) {
        FloatVector p = FloatVector.fromArray(F, scores, c).sub(newMax).lanewise(VectorOperators.EXP);
        p.intoArray(scores, c);
        sumVector = sumVector.add(p);
      }
      s.rowMax[row] = newMax;
      s.rowSum[row] = s.rowSum[row] * rescale + sumVector.reduceLanes(VectorOperators.ADD);
      float[] acc = s.acc;
      float[] values = s.values;
      int accRow = row * headDim;
      int d = 0;
      // four vectors of the row at a time: each weight is broadcast once for four value loads
      for (; d + 4 * L <= headDim; d += 4 * L) {
        FloatVector a0 = FloatVector.fromArray(F, acc, accRow + d).mul(rescale);
        FloatVector a1 = FloatVector.fromArray(F, acc, accRow + d + L).mul(rescale);
        FloatVector a2 = FloatVector.fromArray(F, acc, accRow + d + 2 * L).mul(rescale);
        FloatVector a3 = FloatVector.fromArray(F, acc, accRow + d + 3 * L).mul(rescale);
        for (int j = 0; j < visible; j++) {
          FloatVector p = FloatVector.broadcast(F, scores[j]);
          int v = j * headDim + d;
          a0 = FloatVector.fromArray(F, values, v).fma(p, a0);
          a1 = FloatVector.fromArray(F, values, v + L).fma(p, a1);
          a2 = FloatVector.fromArray(F, values, v + 2 * L).fma(p, a2);
          a3 = FloatVector.fromArray(F, values, v + 3 * L).fma(p, a3);
        }
        a0.intoArray(acc, accRow + d);
        a1.intoArray(acc, accRow + d + L);
        a2.intoArray(acc, accRow + d + 2 * L);
        a3.intoArray(acc, accRow + d + 3 * L);
      }
      for (; d + L <= headDim; d += L) {
        FloatVector even = FloatVector.fromArray(F, acc, accRow + d).mul(rescale);
        FloatVector odd = FloatVector.zero(F);
        int j = 0;
        for (; j + 1 < visible; j += 2) {
          even = FloatVector.fromArray(F, values, j * headDim + d).fma(FloatVector.broadcast(F, scores[j]), even);
          odd = FloatVector.fromArray(F, values, (j + 1) * headDim + d).fma(FloatVector.broadcast(F, scores[j + 1]), odd);
        }
        if (j < visible) {
          even = FloatVector.fromArray(F, values, j * headDim + d).fma(FloatVector.broadcast(F, scores[j]), even);
        }
        even.add(odd).intoArray(acc, accRow + d);
      }
      for (; d < headDim; d++) {
        float sum = acc[accRow + d] * rescale;
        for (int j = 0; j < visible; j++) {
          sum += scores[j] * values[j * headDim + d];
        }
        acc[accRow + d] = sum;
      }
    }
  }

  /** One thread's tiles; grows to the largest head size and row count it has seen, then reused. */
  private static final class Scratch {
    float[] keys = new float[0]; // [KEY_BLOCK, headDim]
    float[] keysTransposed = new float[0]; // [headDim, KEY_BLOCK]
    float[] values = new float[0]; // [KEY_BLOCK, headDim]
    final float[] scores = new float[KEY_BLOCK];
    float[] acc = new float[0]; // [rows, headDim]
    float[] rowMax = new float[0];
    float[] rowSum = new float[0];

    void ensure(int numRows, int headDim) {
      int tile = KEY_BLOCK * headDim;
      if (keys.length < tile) {
        keys = new float[tile];
        keysTransposed = new float[tile];
        values = new float[tile];
      }
      if (acc.length < numRows * headDim) {
        acc = new float[numRows * headDim];
      }
      if (rowMax.length < numRows) {
        rowMax = new float[numRows];
        rowSum = new float[numRows];
      }
    }
  }
}
