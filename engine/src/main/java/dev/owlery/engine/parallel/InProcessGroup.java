package dev.owlery.engine.parallel;

import java.time.Duration;
import java.util.concurrent.BrokenBarrierException;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * N ranks in one JVM, each running on its own thread, that all-reduce through shared memory and a
 * barrier. Every rank sums the contributions in rank order, so all ranks get identical results.
 * Waits are bounded by a timeout; {@link #abort()} breaks the barrier so that a failing rank
 * releases the others.
 */
public final class InProcessGroup {

  private final int size;
  private final long timeoutNanos;
  private final CyclicBarrier barrier;
  private final float[][] contributions;
  private final int[] contributionOffsets;
  private final Member[] members;
  private volatile boolean aborted;

  /** A group of {@code size} ranks whose waits fail after {@code timeout}. */
  public InProcessGroup(int size, Duration timeout) {
    if (size < 1) {
      throw new IllegalArgumentException("group size must be >= 1, got " + size);
    }
    this.size = size;
    this.timeoutNanos = timeout.toNanos();
    this.barrier = new CyclicBarrier(size);
    this.contributions = new float[size][];
    this.contributionOffsets = new int[size];
    this.members = new Member[size];
    for (int r = 0; r < size; r++) {
      members[r] = new Member(r);
    }
  }

  public int size() {
    return size;
  }

  /** The collective for rank {@code rank}; call it only from that rank's thread. */
  public Collective member(int rank) {
    return members[rank];
  }

  /**
   * Breaks the group for good: ranks waiting now, or later, fail instead of waiting for a rank that
   * is gone (their sequences' state is then inconsistent).
   */
  public void abort() {
    aborted = true;
    barrier.reset();
  }

  private void await(int rank) {
    if (aborted) {
      throw new IllegalStateException("rank %d: the tensor-parallel group was aborted after a rank failed".formatted(rank));
    }
    try {
      barrier.await(timeoutNanos, TimeUnit.NANOSECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("rank %d interrupted while waiting for the all-reduce".formatted(rank), e);
    } catch (BrokenBarrierException e) {
      throw new IllegalStateException("rank %d: the tensor-parallel group is broken (another rank failed)"
          .formatted(rank), e);
    } catch (TimeoutException e) {
      throw new IllegalStateException("rank %d: all-reduce timed out after %d ms waiting for the other %d ranks"
          .formatted(rank, TimeUnit.NANOSECONDS.toMillis(timeoutNanos), size - 1), e);
    }
  }

  private final class Member implements Collective {
    private final int rank;
    private float[] sum = new float[0];

    Member(int rank) {
      this.rank = rank;
    }

    @Override
    public int rank() {
      return rank;
    }

    @Override
    public int size() {
      return size;
    }

    @Override
    public void allReduceSum(float[] x, int offset, int length) {
      if (size == 1) {
        return;
      }
      if (sum.length < length) {
        sum = new float[length]; // grows to the largest step once, then reused
      }
      contributions[rank] = x;
      contributionOffsets[rank] = offset;
      await(rank); // every contribution is published
      for (int i = 0; i < length; i++) {
        float s = 0f;
        for (int r = 0; r < size; r++) {
          s += contributions[r][contributionOffsets[r] + i];
        }
        sum[i] = s;
      }
      await(rank); // every rank has read every contribution
      System.arraycopy(sum, 0, x, offset, length);
    }
  }
}
