package dev.owlery.engine.kv;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

/** The block pool's sizes and a paged cache's addressing through its block table. */
class PagedKvCacheTest {

  @Test
  void positionsAreAddressedThroughTheBlockTable() {
    KvBlockPool pool = new KvBlockPool(2, 3, 5, 8, 4, KvCacheDtype.F32);
    assertThat(pool.bytes()).isEqualTo(2L * 4 * 2 * 8 * 4 * 3 * 5);
    PagedKvCache cache = pool.newSequenceCache();
    assertThat(cache.capacity()).isZero();
    cache.appendBlock(6);
    cache.appendBlock(1);
    assertThat(cache.capacity()).isEqualTo(8);
    assertThat(cache.numBlocks()).isEqualTo(2);
    assertThat(cache.blockId(1)).isEqualTo(1);
    // position 5 = block table[1] (block 1), offset 1; kv head 2 of 3, headDim 5
    assertThat(cache.index(5, 2)).isEqualTo(((1 * 4 + 1) * 3 + 2) * 5);
    assertThat(cache.index(3, 0)).isEqualTo(((6 * 4 + 3) * 3) * 5);
    cache.advance(8);
    assertThatThrownBy(() -> cache.advance(1)).hasMessage("cannot advance the KV cache by 1: length 8, capacity 8");
    for (int b = 0; b < 6; b++) {
      cache.appendBlock(b); // grows its table past the first array
    }
    assertThat(cache.capacity()).isEqualTo(32);
    assertThatThrownBy(() -> cache.appendBlock(8)).hasMessage("block id must be in [0, 8). Given: 8");
  }

  @Test
  void aLayerPastTheJavaArrayLimitIsRefusedNamingTheSizes() {
    assertThatThrownBy(() -> new KvBlockPool(32, 32, 128, 65_536, 16, KvCacheDtype.F16))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("a KV block pool layer of numBlocks 65536 x blockSize 16 x numKvHeads 32 x headDim 128 = "
            + "4294967296 elements exceeds the Java array limit of 2147483639 elements; use fewer blocks or more "
            + "tensor-parallel ranks");
    assertThat(KvBlockPool.bytes(32, 32, 128, 65_536, 16, KvCacheDtype.F32)).isEqualTo(2L * 4 * 32 * 65_536 * 16 * 32 * 128);
  }
}
