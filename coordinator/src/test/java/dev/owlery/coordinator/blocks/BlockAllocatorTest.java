package dev.owlery.coordinator.blocks;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class BlockAllocatorTest {

  @Test
  void tablesGrowToCoverTheLastPositionAndFreeBlocksAreReused() {
    BlockAllocator blocks = new BlockAllocator(4, 16);
    List<Integer> first = new ArrayList<>();
    List<Integer> second = new ArrayList<>();

    assertThat(blocks.cover(first, 15)).isTrue();
    assertThat(first).containsExactly(0);
    assertThat(blocks.cover(first, 16)).isTrue();
    assertThat(first).containsExactly(0, 1);
    assertThat(blocks.cover(second, 40)).isFalse();
    assertThat(second).containsExactly(2, 3);
    assertThat(blocks.numFreeBlocks()).isZero();

    blocks.free(first);
    assertThat(first).isEmpty();
    assertThat(blocks.cover(second, 40)).isTrue();
    assertThat(second).containsExactly(2, 3, 0);
    assertThat(blocks.numFreeBlocks()).isEqualTo(1);
  }

  @Test
  void freeingABlockTwiceIsABug() {
    BlockAllocator blocks = new BlockAllocator(2, 16);
    List<Integer> table = new ArrayList<>(List.of(1));

    assertThatThrownBy(() -> blocks.free(table)).isInstanceOf(IllegalStateException.class)
        .hasMessage("block 1 was not allocated from this group's 2 blocks");
  }
}
