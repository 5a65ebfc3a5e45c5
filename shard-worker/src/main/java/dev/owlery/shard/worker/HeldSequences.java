package dev.owlery.shard.worker;

import dev.owlery.proto.internal.v1.StepSequence;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

/**
 * The sequences one rank holds KV for, each with its blocks in the slice's pool ({@code S}: the
 * CPU's paged cache or a device block table, see {@link SliceForward}), and which sequence holds each block ({@code owners}, so that checking a block and counting used
 * blocks are O(1)). Changed by the step thread only; {@link #usedBlocks()} and
 * {@link #freeBlocks()} may be read from any thread (metrics).
 */
final class HeldSequences<S extends SequenceBlocks> {

  private final Supplier<S> newSequence;
  private final int numBlocks;
  private final Map<Long, S> caches = new HashMap<>();
  /** Per block, the id of the sequence holding it; meaningful where {@code held[block]}. */
  private final long[] owners;
  private final boolean[] held;
  private volatile int usedBlocks;

  /** No sequences yet in a pool of {@code numBlocks}; {@code newSequence} makes an empty one. */
  HeldSequences(int numBlocks, Supplier<S> newSequence) {
    this.newSequence = newSequence;
    this.numBlocks = numBlocks;
    this.owners = new long[numBlocks];
    this.held = new boolean[numBlocks];
  }

  /** The blocks of {@code sequenceId}, or null when this rank does not hold it. */
  S get(long sequenceId) {
    return caches.get(sequenceId);
  }

  int size() {
    return caches.size();
  }

  /** Whether some sequence holds {@code block}. */
  boolean isHeld(int block) {
    return held[block];
  }

  /** The sequence holding {@code block}; only meaningful when {@link #isHeld}. */
  long owner(int block) {
    return owners[block];
  }

  /**
   * Gives every sequence of an accepted step its cache (new sequences get an empty one) and appends
   * the entries of its {@code block_ids} past its current table, marking those blocks held.
   */
  void takeBlocks(StepPlan plan) {
    int used = usedBlocks;
    for (StepPlan.SequenceRows rows : plan.sequences()) {
      StepSequence s = rows.sequence();
      S cache = caches.computeIfAbsent(s.getSequenceId(), id -> newSequence.get());
      for (int i = cache.numBlocks(); i < s.getBlockIdsCount(); i++) {
        int block = s.getBlockIds(i);
        cache.appendBlock(block);
        owners[block] = s.getSequenceId();
        held[block] = true;
        used++;
      }
    }
    usedBlocks = used;
  }

  /** Forgets {@code sequenceIds} and frees their blocks; unknown ids are ignored. Returns how many were held. */
  int release(List<Long> sequenceIds) {
    int released = 0;
    int used = usedBlocks;
    for (long id : sequenceIds) {
      S cache = caches.remove(id);
      if (cache != null) {
        for (int i = 0; i < cache.numBlocks(); i++) {
          held[cache.blockId(i)] = false;
        }
        used -= cache.numBlocks();
        released++;
      }
    }
    usedBlocks = used;
    return released;
  }

  /** Forgets every sequence. */
  void clear() {
    caches.clear();
    Arrays.fill(held, false);
    usedBlocks = 0;
  }

  /** Blocks held by some sequence. Any thread. */
  int usedBlocks() {
    return usedBlocks;
  }

  /** Blocks no sequence holds. Any thread. */
  int freeBlocks() {
    return numBlocks - usedBlocks;
  }
}
