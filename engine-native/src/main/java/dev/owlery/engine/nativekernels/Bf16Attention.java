package dev.owlery.engine.nativekernels;

import dev.owlery.engine.kernel.AttentionCall;
import dev.owlery.engine.kernel.AttentionItems;
import dev.owlery.engine.kernel.AttentionMask;
import dev.owlery.engine.kernel.AttentionShape;
import dev.owlery.engine.kernel.ComputePool;
import dev.owlery.engine.kernel.KeyValueRows;
import java.lang.foreign.MemorySegment;

/**
 * Attention with its two products, the scores and the weighted values, in BF16 ({@code
 * owlery_attention_bf16}): cut as the vector kernels' blocked attention is ({@link AttentionItems}),
 * into items of one kv head by a run of query blocks of {@value #ROWS_PER_ITEM} rows, claimed one at
 * a time by the pool's threads. An item reads the keys and values its queries see once and rounds them to BF16 in C's
 * layouts; each query block then goes through the C kernel, which rounds the queries and the
 * softmax weights to BF16 as well and keeps the softmax itself in float32.
 *
 * <p>Rounding the inputs of both products to 8 significant bits moves a score by up to about 2^-7
 * of {@code scale * sum |q_d k_d|}, and an output by up to about 2^-8 of the largest value besides
 * (Bf16AttentionTest bounds it against the scalar reference).
 */
final class Bf16Attention {

  /** Query rows (query x head of one kv head) an item holds at most, unless one query has more heads. */
  private static final int ROWS_PER_ITEM = 64;
  /** Items per thread a call is cut into at least, where it has enough query blocks. */
  private static final int ITEMS_PER_THREAD = 8;

  private final NativeCpuLibrary library;
  private final ComputePool pool;
  private final ThreadLocal<Call> calls;
  private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

  Bf16Attention(NativeCpuLibrary library, ComputePool pool) {
    this.library = library;
    this.pool = pool;
    this.calls = ThreadLocal.withInitial(Call::new);
  }

  /** Whether a head of {@code headDim} can go through the C kernel (a multiple of 16 floats). */
  static boolean runs(AttentionShape shape) {
    return shape.headDim() % 16 == 0;
  }

  void run(float[] q, int qOffset, KeyValueRows kv, AttentionShape shape, AttentionMask mask, int numQueries,
      int numKeys, float[] out, int outOffset) {
    Call call = calls.get();
    call.prepare(q, qOffset, kv, shape, mask, numQueries, numKeys, out, outOffset,
        AttentionItems.of(shape, numQueries, ROWS_PER_ITEM, ITEMS_PER_THREAD, pool.numThreads()));
    try {
      if (pool.numThreads() == 1 || call.numItems() == 1) {
        call.runShare();
      } else {
        pool.run(call);
      }
    } finally {
      call.clear();
    }
  }

  /** One thread's reusable call. */
  private final class Call extends AttentionCall {

    /**
     * Reads the keys and values the item's last query sees, rounds them to BF16 in the C kernel's
     * layouts, then runs the kernel on each query block: its rows are the blocks' queries, each with
     * every query head of the kv head.
     */
    @Override
    protected void attendItem(int kvHead, int fromBlock, int toBlock) {
      Scratch s = SCRATCH.get();
      int headDim = shape.headDim();
      int groupSize = shape.groupSize();
      int queriesPerItem = items.queriesPerItem();
      int end = Math.min(numQueries, toBlock * queriesPerItem);
      int count = AttentionShape.visibleKeys(mask, end - 1, numQueries, numKeys);
      s.ensureKeys(count, headDim);
      kv.readKeys(kvHead, 0, count, s.rows, 0);
      library.bf16KeyTiles(MemorySegment.ofArray(s.rows), count, headDim, MemorySegment.ofArray(s.keyTiles));
      kv.readValues(kvHead, 0, count, s.rows, 0);
      library.bf16ValuePairs(MemorySegment.ofArray(s.rows), count, headDim, MemorySegment.ofArray(s.valuePairs));
      for (int block = fromBlock; block < toBlock; block++) {
        int first = block * queriesPerItem;
        int last = Math.min(numQueries, first + queriesPerItem);
        int rows = (last - first) * groupSize;
        s.ensureRows(rows, library.attentionBf16Scratch(rows, headDim));
        for (int i = first; i < last; i++) {
          int visible = AttentionShape.visibleKeys(mask, i, numQueries, numKeys);
          for (int g = 0; g < groupSize; g++) {
            int row = (i - first) * groupSize + g;
            int column = (kvHead * groupSize + g) * headDim;
            s.qRows[row] = qOffset + i * shape.rowWidth() + column;
            s.outRows[row] = outOffset + i * shape.rowWidth() + column;
            s.visible[row] = visible;
          }
        }
        library.attentionBf16(MemorySegment.ofArray(q), MemorySegment.ofArray(s.qRows),
            MemorySegment.ofArray(s.visible), rows, headDim, MemorySegment.ofArray(s.keyTiles),
            MemorySegment.ofArray(s.valuePairs), shape.scale(), MemorySegment.ofArray(out),
            MemorySegment.ofArray(s.outRows), MemorySegment.ofArray(s.scratch));
      }
    }
  }

  /** One thread's buffers; they grow to the largest call seen, then are reused. */
  private static final class Scratch {
    /** Keys, then values, as float32 rows read from the cache. */
    float[] rows = new float[0];
    short[] keyTiles = new short[0];
    short[] valuePairs = new short[0];
    int[] qRows = new int[0];
    int[] outRows = new int[0];
    int[] visible = new int[0];
    float[] scratch = new float[0];

    void ensureKeys(int count, int headDim) {
      if (rows.length < count * headDim) {
        rows = new float[count * headDim];
      }
      int tiles = Math.ceilDiv(count, 64) * 64 * headDim;
      if (keyTiles.length < tiles) {
        keyTiles = new short[tiles];
      }
      int pairs = Math.ceilDiv(count, 2) * 2 * headDim;
      if (valuePairs.length < pairs) {
        valuePairs = new short[pairs];
      }
    }

    void ensureRows(int numRows, long scratchFloats) {
      if (qRows.length < numRows) {
        qRows = new int[numRows];
        outRows = new int[numRows];
        visible = new int[numRows];
      }
      if (scratch.length < scratchFloats) {
        scratch = new float[Math.toIntExact(scratchFloats)];
      }
    }
  }
}
