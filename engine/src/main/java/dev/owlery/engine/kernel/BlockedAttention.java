package dev.owlery.engine.kernel;

import java.util.Arrays;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@link Kernels#attention} with the Vector API, blocked as FlashAttention is: the work is split into
 * items of one kv head by a run of query blocks of {@value #ROWS_PER_ITEM} rows (every query head of
 * that kv head), spread over a {@link ComputePool}. An item widens and transposes the keys its
 * queries see, and copies their values, once (they stay in L2 for all of its query blocks); each
 * query block walks the keys in blocks of {@value #KEY_BLOCK} (a key block's tile stays in L1 for
 * the block's rows) and keeps a running max and sum per row (online softmax), so no score row longer
 * than a key block is ever materialised. The reference is {@link ScalarKernels#attention}: same
 * result up to float32 rounding (the softmax is summed block by block, and the scores are rescaled
 * as the max grows).
 *
 * <p>Measured through {@link AttentionTime} (which {@code owlery bench} can report): a 2,048-token
 * prefill of one LLaMA-2-7B-shaped layer (F16 weights and KV cache, 2 threads, AVX-512, on a
 * shared, loaded machine) spent 5.5-10% of its wall time in attention; one ViT-L/14 448 layer's
 * attention (1,025 tokens, 16 heads of 64) ran at about half the matmul kernels' GFLOP/s, 20-30% of
 * the layer. Items of 64 rows rather than 32 halve the key tile's widening and transposing per
 * query row (the ViT layer's share went from about 30% to about 22% in the same conditions).
 * Rows going four at a time through the scores and the weighted values (every key and value vector
 * loaded serves four rows) took one thread (thread CPU time, same JVM build, interleaved) from
 * 58-64 to 103-104 GFLOP/s on 32/4 heads x 64 at 2,032 causal tokens and from 54-56 to 96-98 on
 * the vision tower's 16 heads x 64 at 1,025 tokens. Items of a whole head's query blocks (each
 * key transposed once per item, not once per query block: 17 times for the ViT), old and new
 * alternating in one JVM, results equal to the bit: the ViT's shape 139-150 -> 197-210 GFLOP/s at 2
 * threads and 62-77 -> 96-114 at 1; 32/4 heads x 64 at 2,032 causal tokens 168 -> 215 at 2, 32/32
 * x 128 at 512 causal 158 -> 193; decode (one query block, keys loaded block by block as before)
 * unchanged. In the tower (2 threads, separate runs) cut finer, 16 items per thread, was slower
 * than 8 (669/621 against 578/501 ms for the 24 calls).
 */
final class BlockedAttention {

  private static final VectorSpecies<Float> F = VectorMatmul.F;
  private static final int L = F.length();
  /** Keys per block: four vectors of scores at the widest shape (512 bits). */
  static final int KEY_BLOCK = 64;
  /** Query rows (query x head of one kv head) an item holds at most, unless one query has more heads. */
  static final int ROWS_PER_ITEM = 64;
  /** Rows of an item that go together through the scores and the weighted values. */
  static final int GROUP_ROWS = 4;
  /**
   * Items per thread a call is cut into at least, where it has enough query blocks: an item reads
   * its kv head's keys and values once for all of its query blocks.
   */
  static final int ITEMS_PER_THREAD = 8;
  /** Below this many multiply-adds a call runs on the calling thread only. */
  private static final long PARALLEL_THRESHOLD = 1L << 16;

  static {
    if (KEY_BLOCK % (4 * L) != 0) {
      throw new IllegalStateException(
          "the key block of %d is not a multiple of four %d-lane vectors".formatted(KEY_BLOCK, L));
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
    call.prepare(q, qOffset, kv, shape, mask, numQueries, numKeys, out, outOffset,
        AttentionItems.of(shape, numQueries, ROWS_PER_ITEM, ITEMS_PER_THREAD, pool.numThreads()));
    try {
      long work = (long) shape.numHeads() * numQueries * numKeys * shape.headDim();
      if (work < PARALLEL_THRESHOLD || pool.numThreads() == 1 || call.numItems() == 1) {
        call.runShare();
      } else {
        pool.run(call);
      }
    } finally {
      call.clear();
    }
  }

  /** One thread's reusable call. */
  private static final class Call extends AttentionCall {

    @Override
    protected void attendItem(int kvHead, int fromBlock, int toBlock) {
      Scratch scratch = SCRATCH.get();
      int queriesPerItem = items.queriesPerItem();
      int end = Math.min(numQueries, toBlock * queriesPerItem);
      // an item of several query blocks reads its keys and values once for all of them; one of a
      // single block (decode, short chunks) key block by key block, each tile in L1 (reading the
      // whole head first measured 10-20% slower there)
      scratch.wholeHead = toBlock - fromBlock > 1;
      if (scratch.wholeHead) {
        loadKeys(scratch, kvHead, 0, AttentionShape.visibleKeys(mask, end - 1, numQueries, numKeys), shape.headDim());
      }
      for (int queryBlock = fromBlock; queryBlock < toBlock; queryBlock++) {
        int first = queryBlock * queriesPerItem;
        attendBlock(scratch, kvHead, first, Math.min(numQueries, first + queriesPerItem));
      }
    }

    /**
     * Keys {@code [from, from + count)} of {@code kvHead} transposed into {@code s.keysTransposed} one
     * key block after another, each block a [headDim, KEY_BLOCK] tile (zero past the last key), and
     * their values into {@code s.values} as [count, headDim]. Tiles, not one [headDim, count] array:
     * the scores then read every tile with the constant row stride of a key block (a stride of
     * {@code count} kept C2 from hoisting the loads' bounds checks and, at 2,048 keys, put every row
     * of a tile in one L1 set).
     */
    private void loadKeys(Scratch s, int kvHead, int from, int count, int headDim) {
      s.ensureKeys(Math.ceilDiv(count, KEY_BLOCK) * KEY_BLOCK, headDim);
      float[] kt = s.keysTransposed;
      for (int blockStart = 0; blockStart < count; blockStart += KEY_BLOCK) {
        int numBlockKeys = Math.min(KEY_BLOCK, count - blockStart);
        int tile = blockStart * headDim;
        kv.readKeys(kvHead, from + blockStart, numBlockKeys, s.keys, 0);
        for (int j = 0; j < numBlockKeys; j++) {
          for (int d = 0; d < headDim; d++) {
            kt[tile + d * KEY_BLOCK + j] = s.keys[j * headDim + d];
          }
        }
        if (numBlockKeys < KEY_BLOCK) {
          for (int d = 0; d < headDim; d++) {
            Arrays.fill(kt, tile + d * KEY_BLOCK + numBlockKeys, tile + (d + 1) * KEY_BLOCK, 0f);
          }
        }
      }
      kv.readValues(kvHead, from, count, s.values, 0);
      s.keysFrom = from;
    }

    /**
     * Queries {@code [first, end)}, every query head of {@code kvHead}, over the keys they see; the
     * item's rows (query after query, head after head) go {@value #GROUP_ROWS} at a time through
     * the scores and the weighted sum of values, so that every key vector and every value vector
     * loaded serves four rows (one row at a time loaded 1.25 vectors per FMA).
     */
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
        if (!s.wholeHead) {
          loadKeys(s, kvHead, keyStart, numBlockKeys, headDim);
        }
        int loadedKey = keyStart - s.keysFrom;
        for (int row0 = 0; row0 < numRows; row0 += GROUP_ROWS) {
          // a group's missing rows repeat its last row, with nothing visible (their results are dropped)
          int maxVisible = 0;
          for (int r = 0; r < GROUP_ROWS; r++) {
            int row = Math.min(row0 + r, numRows - 1);
            int i = first + row / groupSize;
            s.qRows[r] = qOffset + i * shape.rowWidth() + (kvHead * groupSize + row % groupSize) * headDim;
            s.visible[r] = row0 + r < numRows
                ? Math.min(numBlockKeys, AttentionShape.visibleKeys(mask, i, numQueries, numKeys) - keyStart)
                : 0;
            maxVisible = Math.max(maxVisible, s.visible[r]);
          }
          if (maxVisible <= 0) {
            continue;
          }
          scores(s, headDim, loadedKey);
          for (int r = 0; r < GROUP_ROWS; r++) {
            s.rescale[r] = softmaxStep(s, row0 + r, r);
          }
          weightedValues(s, row0, Math.min(GROUP_ROWS, numRows - row0), headDim, loadedKey, maxVisible);
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

    // hot: prefill and vision attention, the scores of four rows against the key block from loaded
    // key keyStart: per column d, four key vectors loaded for 16 FMAs. s.scores[r * KEY_BLOCK + j] =
    // scale * q_r . k_(keyStart + j), -inf past the row's visible keys.
    private void scores(Scratch s, int headDim, int keyStart) {
      float[] kt = s.keysTransposed;
      int tile = keyStart * headDim;
      float[] scores = s.scores;
      int q0 = s.qRows[0];
      int q1 = s.qRows[1];
      int q2 = s.qRows[2];
      int q3 = s.qRows[3];
      float scale = shape.scale();
      for (int c = 0; c < KEY_BLOCK; c += 4 * L) {
        FloatVector a00 = FloatVector.zero(F);
        FloatVector a01 = FloatVector.zero(F);
        FloatVector a02 = FloatVector.zero(F);
        FloatVector a03 = FloatVector.zero(F);
        FloatVector a10 = FloatVector.zero(F);
        FloatVector a11 = FloatVector.zero(F);
        FloatVector a12 = FloatVector.zero(F);
        FloatVector a13 = FloatVector.zero(F);
        FloatVector a20 = FloatVector.zero(F);
        FloatVector a21 = FloatVector.zero(F);
        FloatVector a22 = FloatVector.zero(F);
        FloatVector a23 = FloatVector.zero(F);
        FloatVector a30 = FloatVector.zero(F);
        FloatVector a31 = FloatVector.zero(F);
        FloatVector a32 = FloatVector.zero(F);
        FloatVector a33 = FloatVector.zero(F);
        for (int d = 0; d < headDim; d++) {
          int base = tile + d * KEY_BLOCK + c;
          FloatVector k0 = FloatVector.fromArray(F, kt, base);
          FloatVector k1 = FloatVector.fromArray(F, kt, base + L);
          FloatVector k2 = FloatVector.fromArray(F, kt, base + 2 * L);
          FloatVector k3 = FloatVector.fromArray(F, kt, base + 3 * L);
          FloatVector qd = FloatVector.broadcast(F, q[q0 + d]);
          a00 = k0.fma(qd, a00);
          a01 = k1.fma(qd, a01);
          a02 = k2.fma(qd, a02);
          a03 = k3.fma(qd, a03);
          qd = FloatVector.broadcast(F, q[q1 + d]);
          a10 = k0.fma(qd, a10);
          a11 = k1.fma(qd, a11);
          a12 = k2.fma(qd, a12);
          a13 = k3.fma(qd, a13);
          qd = FloatVector.broadcast(F, q[q2 + d]);
          a20 = k0.fma(qd, a20);
          a21 = k1.fma(qd, a21);
          a22 = k2.fma(qd, a22);
          a23 = k3.fma(qd, a23);
          qd = FloatVector.broadcast(F, q[q3 + d]);
          a30 = k0.fma(qd, a30);
          a31 = k1.fma(qd, a31);
          a32 = k2.fma(qd, a32);
          a33 = k3.fma(qd, a33);
        }
        a00.mul(scale).intoArray(scores, c);
        a01.mul(scale).intoArray(scores, c + L);
        a02.mul(scale).intoArray(scores, c + 2 * L);
        a03.mul(scale).intoArray(scores, c + 3 * L);
        a10.mul(scale).intoArray(scores, KEY_BLOCK + c);
        a11.mul(scale).intoArray(scores, KEY_BLOCK + c + L);
        a12.mul(scale).intoArray(scores, KEY_BLOCK + c + 2 * L);
        a13.mul(scale).intoArray(scores, KEY_BLOCK + c + 3 * L);
        a20.mul(scale).intoArray(scores, 2 * KEY_BLOCK + c);
        a21.mul(scale).intoArray(scores, 2 * KEY_BLOCK + c + L);
        a22.mul(scale).intoArray(scores, 2 * KEY_BLOCK + c + 2 * L);
        a23.mul(scale).intoArray(scores, 2 * KEY_BLOCK + c + 3 * L);
        a30.mul(scale).intoArray(scores, 3 * KEY_BLOCK + c);
        a31.mul(scale).intoArray(scores, 3 * KEY_BLOCK + c + L);
        a32.mul(scale).intoArray(scores, 3 * KEY_BLOCK + c + 2 * L);
        a33.mul(scale).intoArray(scores, 3 * KEY_BLOCK + c + 3 * L);
      }
      for (int r = 0; r < GROUP_ROWS; r++) {
        Arrays.fill(scores, r * KEY_BLOCK + Math.max(0, s.visible[r]), (r + 1) * KEY_BLOCK, Float.NEGATIVE_INFINITY);
      }
    }

    /**
     * Online softmax step of group row {@code r} (item row {@code row}): raises its max to cover the
     * block's scores, turns the scores into {@code exp(s_j - newMax)} in place, and rescales the sum
     * by {@code exp(oldMax - newMax)}, which it returns for the weighted values. A row that sees no
     * key of the block keeps its state: weights 0, rescale 1.
     */
    private float softmaxStep(Scratch s, int row, int r) {
      float[] scores = s.scores;
      int base = r * KEY_BLOCK;
      if (s.visible[r] <= 0) {
        Arrays.fill(scores, base, base + KEY_BLOCK, 0f);
        return 1f;
      }
      FloatVector maxVector = FloatVector.fromArray(F, scores, base);
      for (int c = L; c < KEY_BLOCK; c += L) {
        maxVector = maxVector.max(FloatVector.fromArray(F, scores, base + c));
      }
      float oldMax = s.rowMax[row];
      float newMax = Math.max(oldMax, maxVector.reduceLanes(VectorOperators.MAX));
      float rescale = (float) Math.exp(oldMax - newMax);
      FloatVector sumVector = FloatVector.zero(F);
      for (int c = 0; c < KEY_BLOCK; c += L) {
        FloatVector p = FloatVector.fromArray(F, scores, base + c).sub(newMax).lanewise(VectorOperators.EXP);
        p.intoArray(scores, base + c);
        sumVector = sumVector.add(p);
      }
      s.rowMax[row] = newMax;
      s.rowSum[row] = s.rowSum[row] * rescale + sumVector.reduceLanes(VectorOperators.ADD);
      return rescale;
    }

    /**
     * {@code acc_r = acc_r * rescale_r + sum_j p_rj v_(keyStart + j)} (loaded values) for the group's
     * {@code numRows} rows from item row {@code row0}, over the block's first {@code numKeys} keys
     * (weights past a row's visible keys are 0).
     */
    private void weightedValues(Scratch s, int row0, int numRows, int headDim, int keyStart, int numKeys) {
      float[] acc = s.acc;
      float[] values = s.values;
      int vFirst = keyStart * headDim;
      float[] p = s.scores;
      int d = 0;
      if (numRows == GROUP_ROWS) {
        // hot: four rows by four vectors of the head: each value vector loaded serves four rows
        int r0 = row0 * headDim;
        int r1 = r0 + headDim;
        int r2 = r1 + headDim;
        int r3 = r2 + headDim;
        float s0 = s.rescale[0];
        float s1 = s.rescale[1];
        float s2 = s.rescale[2];
        float s3 = s.rescale[3];
        for (; d + 4 * L <= headDim; d += 4 * L) {
          FloatVector a00 = FloatVector.fromArray(F, acc, r0 + d).mul(s0);
          FloatVector a01 = FloatVector.fromArray(F, acc, r0 + d + L).mul(s0);
          FloatVector a02 = FloatVector.fromArray(F, acc, r0 + d + 2 * L).mul(s0);
          FloatVector a03 = FloatVector.fromArray(F, acc, r0 + d + 3 * L).mul(s0);
          FloatVector a10 = FloatVector.fromArray(F, acc, r1 + d).mul(s1);
          FloatVector a11 = FloatVector.fromArray(F, acc, r1 + d + L).mul(s1);
          FloatVector a12 = FloatVector.fromArray(F, acc, r1 + d + 2 * L).mul(s1);
          FloatVector a13 = FloatVector.fromArray(F, acc, r1 + d + 3 * L).mul(s1);
          FloatVector a20 = FloatVector.fromArray(F, acc, r2 + d).mul(s2);
          FloatVector a21 = FloatVector.fromArray(F, acc, r2 + d + L).mul(s2);
          FloatVector a22 = FloatVector.fromArray(F, acc, r2 + d + 2 * L).mul(s2);
          FloatVector a23 = FloatVector.fromArray(F, acc, r2 + d + 3 * L).mul(s2);
          FloatVector a30 = FloatVector.fromArray(F, acc, r3 + d).mul(s3);
          FloatVector a31 = FloatVector.fromArray(F, acc, r3 + d + L).mul(s3);
          FloatVector a32 = FloatVector.fromArray(F, acc, r3 + d + 2 * L).mul(s3);
          FloatVector a33 = FloatVector.fromArray(F, acc, r3 + d + 3 * L).mul(s3);
          for (int j = 0; j < numKeys; j++) {
            int v = vFirst + j * headDim + d;
            FloatVector v0 = FloatVector.fromArray(F, values, v);
            FloatVector v1 = FloatVector.fromArray(F, values, v + L);
            FloatVector v2 = FloatVector.fromArray(F, values, v + 2 * L);
            FloatVector v3 = FloatVector.fromArray(F, values, v + 3 * L);
            FloatVector w = FloatVector.broadcast(F, p[j]);
            a00 = v0.fma(w, a00);
            a01 = v1.fma(w, a01);
            a02 = v2.fma(w, a02);
            a03 = v3.fma(w, a03);
            w = FloatVector.broadcast(F, p[KEY_BLOCK + j]);
            a10 = v0.fma(w, a10);
            a11 = v1.fma(w, a11);
            a12 = v2.fma(w, a12);
            a13 = v3.fma(w, a13);
            w = FloatVector.broadcast(F, p[2 * KEY_BLOCK + j]);
            a20 = v0.fma(w, a20);
            a21 = v1.fma(w, a21);
            a22 = v2.fma(w, a22);
            a23 = v3.fma(w, a23);
            w = FloatVector.broadcast(F, p[3 * KEY_BLOCK + j]);
            a30 = v0.fma(w, a30);
            a31 = v1.fma(w, a31);
            a32 = v2.fma(w, a32);
            a33 = v3.fma(w, a33);
          }
          a00.intoArray(acc, r0 + d);
          a01.intoArray(acc, r0 + d + L);
          a02.intoArray(acc, r0 + d + 2 * L);
          a03.intoArray(acc, r0 + d + 3 * L);
          a10.intoArray(acc, r1 + d);
          a11.intoArray(acc, r1 + d + L);
          a12.intoArray(acc, r1 + d + 2 * L);
          a13.intoArray(acc, r1 + d + 3 * L);
          a20.intoArray(acc, r2 + d);
          a21.intoArray(acc, r2 + d + L);
          a22.intoArray(acc, r2 + d + 2 * L);
          a23.intoArray(acc, r2 + d + 3 * L);
          a30.intoArray(acc, r3 + d);
          a31.intoArray(acc, r3 + d + L);
          a32.intoArray(acc, r3 + d + 2 * L);
          a33.intoArray(acc, r3 + d + 3 * L);
        }
      }
      // the head's columns left (and every column of a group short of four rows), row by row
      for (int r = 0; r < numRows; r++) {
        int accRow = (row0 + r) * headDim;
        float rescale = s.rescale[r];
        int pr = r * KEY_BLOCK;
        int e = d;
        for (; e + L <= headDim; e += L) {
          FloatVector a = FloatVector.fromArray(F, acc, accRow + e).mul(rescale);
          for (int j = 0; j < numKeys; j++) {
            a = FloatVector.fromArray(F, values, vFirst + j * headDim + e).fma(FloatVector.broadcast(F, p[pr + j]), a);
          }
          a.intoArray(acc, accRow + e);
        }
        for (; e < headDim; e++) {
          float sum = acc[accRow + e] * rescale;
          for (int j = 0; j < numKeys; j++) {
            sum += p[pr + j] * values[vFirst + j * headDim + e];
          }
          acc[accRow + e] = sum;
        }
      }
    }
  }

  /** One thread's tiles; grows to the largest head size and row count it has seen, then reused. */
  private static final class Scratch {
    float[] keys = new float[0]; // [KEY_BLOCK, headDim]
    /** The loaded keys, tiles of [headDim, KEY_BLOCK], and values, [keys, headDim], from key keysFrom (loadKeys). */
    float[] keysTransposed = new float[0];
    float[] values = new float[0];
    int keysFrom;
    /** Whether the item's whole head is loaded, rather than one key block at a time. */
    boolean wholeHead;
    /** The scores, then the softmax weights, of a group's rows: [GROUP_ROWS, KEY_BLOCK]. */
    final float[] scores = new float[GROUP_ROWS * KEY_BLOCK];
    /** Per group row: its query's offset in q, its visible keys in the block, its rescale factor. */
    final int[] qRows = new int[GROUP_ROWS];
    final int[] visible = new int[GROUP_ROWS];
    final float[] rescale = new float[GROUP_ROWS];
    float[] acc = new float[0]; // [rows, headDim]
    float[] rowMax = new float[0];
    float[] rowSum = new float[0];

    void ensure(int numRows, int headDim) {
      if (acc.length < numRows * headDim) {
        acc = new float[numRows * headDim];
      }
      if (rowMax.length < numRows) {
        rowMax = new float[numRows];
        rowSum = new float[numRows];
      }
    }

    void ensureKeys(int numKeys, int headDim) {
      if (keys.length < KEY_BLOCK * headDim) {
        keys = new float[KEY_BLOCK * headDim];
      }
      if (keysTransposed.length < numKeys * headDim) {
        keysTransposed = new float[numKeys * headDim];
        values = new float[numKeys * headDim];
      }
    }
  }
}
