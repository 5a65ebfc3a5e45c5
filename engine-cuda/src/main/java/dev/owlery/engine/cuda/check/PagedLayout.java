package dev.owlery.engine.cuda.check;

import dev.owlery.engine.kv.KvBlockPool;
import dev.owlery.engine.kv.KvCacheDtype;
import dev.owlery.engine.kv.PagedKvCache;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A KV block pool of one layer and the block tables of a few sequences, as the device kernels get
 * them (a flat int32 table per sequence, padded with -1) and as the engine holds them
 * ({@link KvBlockPool} and one {@link PagedKvCache} per sequence, F16). The tables may skip blocks
 * and run in any order: the pool's holes are other sequences' blocks.
 */
record PagedLayout(int numBlocks, int blockSize, int numKvHeads, int headDim, int[][] tables) {

  int kvWidth() {
    return numKvHeads * headDim;
  }

  int maxBlocksPerSeq() {
    return Arrays.stream(tables).mapToInt(t -> t.length).max().orElse(1);
  }

  /** Elements of one pool array (keys or values): {@code [numBlocks, blockSize, numKvHeads, headDim]}. */
  int poolElements() {
    return numBlocks * blockSize * kvWidth();
  }

  /** {@code [numSeqs, maxBlocksPerSeq]} int32, unused entries -1. */
  int[] flatTables() {
    int width = maxBlocksPerSeq();
    int[] flat = new int[tables.length * width];
    Arrays.fill(flat, -1);
    for (int s = 0; s < tables.length; s++) {
      System.arraycopy(tables[s], 0, flat, s * width, tables[s].length);
    }
    return flat;
  }

  /** An F16 pool of one layer with these sizes. */
  KvBlockPool enginePool() {
    return new KvBlockPool(1, numKvHeads, headDim, numBlocks, blockSize, KvCacheDtype.F16);
  }

  /** One engine cache per sequence in {@code pool}, its block table appended as given. */
  List<PagedKvCache> engineCaches(KvBlockPool pool) {
    List<PagedKvCache> caches = new ArrayList<>();
    for (int[] table : tables) {
      PagedKvCache cache = pool.newSequenceCache();
      for (int block : table) {
        cache.appendBlock(block);
      }
      caches.add(cache);
    }
    return caches;
  }
}
