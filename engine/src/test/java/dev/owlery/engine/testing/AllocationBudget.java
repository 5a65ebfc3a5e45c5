package dev.owlery.engine.testing;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.management.ManagementFactory;

/**
 * An arena that caps what a fuzz target may allocate for one input: native memory through this
 * arena is refused past the budget before it is allocated, and heap allocated by the calling thread
 * is checked on {@link #close()}. An input of a few kilobytes that makes a parser claim more is a
 * bug in the parser (a declared size trusted before it was checked against the bytes present), and
 * this turns it into a finding instead of an out-of-memory machine. One thread, one input.
 */
public final class AllocationBudget implements Arena {

  private static final com.sun.management.ThreadMXBean THREADS =
      (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();

  private final long maxBytes;
  private final Arena arena = Arena.ofConfined();
  private final long heapAtStart = THREADS.getCurrentThreadAllocatedBytes();
  private long nativeBytes;

  public AllocationBudget(long maxBytes) {
    this.maxBytes = maxBytes;
  }

  @Override
  public MemorySegment allocate(long byteSize, long byteAlignment) {
    if (byteSize > maxBytes - nativeBytes) {
      throw new AssertionError("an input asked this arena for %d bytes after %d, over the fuzz budget of %d bytes"
          .formatted(byteSize, nativeBytes, maxBytes));
    }
    nativeBytes += byteSize;
    return arena.allocate(byteSize, byteAlignment);
  }

  @Override
  public MemorySegment.Scope scope() {
    return arena.scope();
  }

  /** Frees the arena, then fails if the thread's heap allocations plus the arena's went over the budget. */
  @Override
  public void close() {
    arena.close();
    long heapBytes = THREADS.getCurrentThreadAllocatedBytes() - heapAtStart;
    if (heapBytes + nativeBytes > maxBytes) {
      throw new AssertionError("one input made the code under test allocate %d heap + %d native bytes, over the fuzz budget of %d bytes"
          .formatted(heapBytes, nativeBytes, maxBytes));
    }
  }
}
