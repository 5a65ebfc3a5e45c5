package dev.owlery.engine.kernel;

/**
 * How one attention call is cut into items that a pool's threads claim one at a time: an item is
 * one kv head by a run of query blocks, a block {@code queriesPerItem} queries (every query head of
 * the kv head for each); each kv head's blocks are cut into {@code partsPerHead} runs. Items are
 * numbered so that the last runs, whose queries see the most keys under a causal mask, come first.
 * {@link BlockedAttention} and {@code engine-native}'s BF16 attention cut their calls so.
 */
public record AttentionItems(int numKvHeads, int queriesPerItem, int numQueryBlocks, int partsPerHead) {

  /**
   * The items of a call of {@code numQueries} queries: blocks of at most {@code rowsPerItem} query rows
   * (at least one query), and enough runs per kv head for {@code itemsPerThread} items on each of
   * {@code numThreads} threads where the blocks allow.
   */
  public static AttentionItems of(AttentionShape shape, int numQueries, int rowsPerItem, int itemsPerThread,
      int numThreads) {
    int queriesPerItem = Math.max(1, rowsPerItem / shape.groupSize());
    int numQueryBlocks = Math.ceilDiv(numQueries, queriesPerItem);
    int wantedParts = Math.ceilDiv(itemsPerThread * numThreads, shape.numKvHeads());
    return new AttentionItems(shape.numKvHeads(), queriesPerItem, numQueryBlocks,
        Math.max(1, Math.min(numQueryBlocks, wantedParts)));
  }

  /** Items in the call. */
  public int count() {
    return partsPerHead * numKvHeads;
  }

  /** The kv head of {@code item}. */
  public int kvHead(int item) {
    return item % numKvHeads;
  }

  /** The first query block of {@code item}. */
  public int fromBlock(int item) {
    return (int) ((long) numQueryBlocks * part(item) / partsPerHead);
  }

  /** The query block after {@code item}'s last. */
  public int toBlock(int item) {
    return (int) ((long) numQueryBlocks * (part(item) + 1) / partsPerHead);
  }

  /** Which run of its kv head's blocks {@code item} is: the last runs first. */
  private int part(int item) {
    return partsPerHead - 1 - item / numKvHeads;
  }
}
