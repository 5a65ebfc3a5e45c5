package dev.owlery.engine.testing;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.management.ManagementFactory;
import java.util.function.Consumer;

/**
 * Caps what a fuzz target may allocate for one input: native memory through the arena it is given
 * is refused past the budget before it is allocated, and heap allocated by the calling thread is
 * measured. An input of a few kilobytes that makes a parser claim more is a bug in the parser (a
 * declared size trusted before it was checked against the bytes present), and this turns it into a
 * finding instead of an out-of-memory machine.
 */
public final class AllocationBudget implements Arena {

  private static final com.sun.management.ThreadMXBean THREADS =
      (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();

  private final long maxBytes;
  private Arena arena;
  private long nativeBytes;
  private long heapBytes;

  private AllocationBudget(long maxBytes) {
    this.maxBytes = maxBytes;
  }

  /**
   * Runs {@code target} with an arena and rethrows what it throws; fails with an AssertionError when
   * it allocates more than {@code maxBytes} (heap of this thread plus the arena's native memory).
   */
  public static void enforce(long maxBytes, Consumer<Arena> target) {
    AllocationBudget first = new AllocationBudget(maxBytes);
    RuntimeException thrown = first.run(target);
    if (first.used() > maxBytes) {
      // A code path's first run also loads (and, while fuzzing, instruments) its classes on this
      // thread; only a repeat, which allocates what the input asks for alone, counts.
      AllocationBudget again = new AllocationBudget(maxBytes);
      thrown = again.run(target);
      if (again.used() > maxBytes) {
        throw new AssertionError("one input made the code under test allocate %d heap + %d native bytes, over the "
            .formatted(again.heapBytes, again.nativeBytes) + "fuzz budget of %d bytes".formatted(maxBytes));
      }
    }
    if (thrown != null) {
      throw thrown;
    }
  }

  private RuntimeException run(Consumer<Arena> target) {
    long heapAtStart = THREADS.getCurrentThreadAllocatedBytes();
    try (Arena owned = Arena.ofConfined()) {
      arena = owned;
      target.accept(this);
      return null;
    } catch (RuntimeException e) {
      return e;
    } finally {
      heapBytes = THREADS.getCurrentThreadAllocatedBytes() - heapAtStart;
    }
  }

  private long used() {
    return heapBytes + nativeBytes;
  }

  @Override
  public MemorySegment allocate(long byteSize, long byteAlignment) {
    if (byteSize > maxBytes - nativeBytes) {
      throw new AssertionError("an input asked the arena for %d bytes after %d, over the fuzz budget of %d bytes"
          .formatted(byteSize, nativeBytes, maxBytes));
    }
    nativeBytes += byteSize;
    return arena.allocate(byteSize, byteAlignment);
  }

  @Override
  public MemorySegment.Scope scope() {
    return arena.scope();
  }

  /** The budget closes the arena it lends when the target returns. */
  @Override
  public void close() {
    throw new UnsupportedOperationException("the arena of an AllocationBudget is closed by enforce()");
  }
}
