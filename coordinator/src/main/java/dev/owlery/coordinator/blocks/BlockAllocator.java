package dev.owlery.coordinator.blocks;

import java.util.ArrayDeque;
import java.util.BitSet;
import java.util.Deque;
import java.util.List;

/**
 * The free list of one shard group's KV blocks: {@code numBlocks} blocks of {@code
 * blockSizeTokens} positions. Owned by the thread that schedules the group's sequences (not
 * thread-safe). Blocks are handed out lowest id first.
 */
public final class BlockAllocator {

  private final int numBlocks;
  private final int blockSizeTokens;
  private final Deque<Integer> free = new ArrayDeque<>();
  private final BitSet allocated = new BitSet();

  public BlockAllocator(int numBlocks, int blockSizeTokens) {
    if (numBlocks < 1 || blockSizeTokens < 1) {
      throw new IllegalArgumentException("numBlocks and blockSizeTokens must be >= 1. Given: " + numBlocks + ", "
          + blockSizeTokens);
    }
    this.numBlocks = numBlocks;
    this.blockSizeTokens = blockSizeTokens;
    for (int id = 0; id < numBlocks; id++) {
      free.addLast(id);
    }
  }

  public int numBlocks() {
    return numBlocks;
  }

  public int numFreeBlocks() {
    return free.size();
  }

  public int blockSizeTokens() {
    return blockSizeTokens;
  }

  /**
   * Grows {@code blockTable} until it covers position {@code lastPosition}.
   *
   * @return false when the free blocks ran out (the table keeps what it got; free it)
   */
  public boolean cover(List<Integer> blockTable, int lastPosition) {
    while ((long) blockTable.size() * blockSizeTokens <= lastPosition) {
      Integer block = free.pollFirst();
      if (block == null) {
        return false;
      }
      allocated.set(block);
      blockTable.add(block);
    }
    return true;
  }

  /** Returns every block of {@code blockTable} and empties it. */
  public void free(List<Integer> blockTable) {
    for (int block : blockTable) {
      if (block < 0 || block >= numBlocks || !allocated.get(block)) {
        throw new IllegalStateException("block " + block + " was not allocated from this group's " + numBlocks
            + " blocks");
      }
      allocated.clear(block);
      free.addLast(block);
    }
    blockTable.clear();
  }
}
