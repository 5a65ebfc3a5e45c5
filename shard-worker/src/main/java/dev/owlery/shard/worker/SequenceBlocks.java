package dev.owlery.shard.worker;

/**
 * One sequence's place in a rank's KV pool, as the coordinator's block table gives it: the blocks
 * holding its positions, in order, and how many positions are cached. The table only grows.
 */
interface SequenceBlocks {

  /** Positions cached so far: the position of the sequence's next row. */
  int length();

  /** Blocks in the table. */
  int numBlocks();

  /** The block holding positions {@code [i * blockSize, (i + 1) * blockSize)}. */
  int blockId(int i);

  /** Appends {@code blockId} to the table. */
  void appendBlock(int blockId);
}
