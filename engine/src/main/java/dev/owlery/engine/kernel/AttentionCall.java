package dev.owlery.engine.kernel;

import java.util.concurrent.atomic.AtomicInteger;

/**
 * One attention call of a {@link Kernels#attention} implementation, shared out over a
 * {@link ComputePool}: its arguments, cut into {@link AttentionItems} that every thread of the pool
 * claims one at a time and attends ({@link #attendItem}). A calling thread keeps one and reuses it:
 * {@link #prepare} before the pool runs it, {@link #clear} after.
 */
public abstract class AttentionCall implements ComputePool.SharedTask {

  private final AtomicInteger nextItem = new AtomicInteger();
  protected float[] q;
  protected int qOffset;
  protected KeyValueRows kv;
  protected AttentionShape shape;
  protected AttentionMask mask;
  protected int numQueries;
  protected int numKeys;
  protected float[] out;
  protected int outOffset;
  protected AttentionItems items;

  /** The call's arguments (as {@link Kernels#attention} takes them) and how it is cut. */
  public final void prepare(float[] q, int qOffset, KeyValueRows kv, AttentionShape shape, AttentionMask mask,
      int numQueries, int numKeys, float[] out, int outOffset, AttentionItems items) {
    this.q = q;
    this.qOffset = qOffset;
    this.kv = kv;
    this.shape = shape;
    this.mask = mask;
    this.numQueries = numQueries;
    this.numKeys = numKeys;
    this.out = out;
    this.outOffset = outOffset;
    this.items = items;
    nextItem.set(0); // volatile write publishes the fields above to the workers
  }

  /** Drops the call's arrays, so that a kept call holds no memory of the caller's. */
  public final void clear() {
    q = null;
    kv = null;
    out = null;
  }

  /** Items in the prepared call. */
  public final int numItems() {
    return items.count();
  }

  @Override
  public final void runShare() {
    for (int item = nextItem.getAndIncrement(); item < items.count(); item = nextItem.getAndIncrement()) {
      attendItem(items.kvHead(item), items.fromBlock(item), items.toBlock(item));
    }
  }

  /** Attends the query blocks {@code [fromBlock, toBlock)} of {@code kvHead} on the calling thread. */
  protected abstract void attendItem(int kvHead, int fromBlock, int toBlock);
}
