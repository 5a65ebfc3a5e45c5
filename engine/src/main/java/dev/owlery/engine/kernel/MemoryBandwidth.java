package dev.owlery.engine.kernel;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

/**
 * The read bandwidth a plain vectorised sum reaches over a buffer far larger than the caches: the
 * limit decode (which reads every weight once per token) is measured against in {@code owlery
 * bench}. Each thread sums its own contiguous share with four accumulators.
 */
public final class MemoryBandwidth implements AutoCloseable {

  private static final int L = VectorMatmul.F.length();
  private static final ValueLayout.OfFloat F32_LE =
      ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  private final Arena arena = Arena.ofShared();
  private final MemorySegment buffer;

  /** A buffer of {@code bytes} (rounded down to whole 4-vector groups), every page written once. */
  public MemoryBandwidth(long bytes) {
    long groupBytes = 4L * L * Float.BYTES;
    buffer = arena.allocate(bytes / groupBytes * groupBytes, 64);
    for (long i = 0; i < buffer.byteSize(); i += Float.BYTES) {
      buffer.set(F32_LE, i, 1f);
    }
  }

  /** Bytes read per pass. */
  public long bytes() {
    return buffer.byteSize();
  }

  /** The best of {@code passes} whole-buffer reads on {@code threads} threads, in bytes per second. */
  public double readBytesPerSecond(int threads, int passes) {
    double best = 0;
    for (int pass = 0; pass < passes; pass++) {
      long start = System.nanoTime();
      float sum = sumOnThreads(threads);
      double seconds = (System.nanoTime() - start) / 1e9;
      long ones = buffer.byteSize() / Float.BYTES; // the sum is used, so the reads cannot be optimised away
      if (Math.abs(sum - ones) > 1e-6 * ones) {
        throw new IllegalStateException("bandwidth probe summed %s, expected %d".formatted(sum, ones));
      }
      best = Math.max(best, buffer.byteSize() / seconds);
    }
    return best;
  }

  private float sumOnThreads(int threads) {
    long groups = buffer.byteSize() / (4L * L * Float.BYTES);
    float[] sums = new float[threads];
    List<Thread> started = new ArrayList<>();
    for (int t = 1; t < threads; t++) {
      int share = t;
      started.add(Thread.ofPlatform().start(() -> sums[share] = sumShare(share, threads, groups)));
    }
    sums[0] = sumShare(0, threads, groups);
    for (Thread thread : started) {
      try {
        thread.join();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException("interrupted while measuring memory bandwidth", e);
      }
    }
    float total = 0;
    for (float s : sums) {
      total += s;
    }
    return total;
  }

  private float sumShare(int share, int threads, long groups) {
    long from = groups * share / threads * 4 * L * Float.BYTES;
    long to = groups * (share + 1) / threads * 4 * L * Float.BYTES;
    FloatVector a0 = FloatVector.zero(VectorMatmul.F);
    FloatVector a1 = FloatVector.zero(VectorMatmul.F);
    FloatVector a2 = FloatVector.zero(VectorMatmul.F);
    FloatVector a3 = FloatVector.zero(VectorMatmul.F);
    long step = (long) L * Float.BYTES;
    for (long b = from; b < to; b += 4 * step) {
      a0 = a0.add(FloatVector.fromMemorySegment(VectorMatmul.F, buffer, b, ByteOrder.LITTLE_ENDIAN));
      a1 = a1.add(FloatVector.fromMemorySegment(VectorMatmul.F, buffer, b + step, ByteOrder.LITTLE_ENDIAN));
      a2 = a2.add(FloatVector.fromMemorySegment(VectorMatmul.F, buffer, b + 2 * step, ByteOrder.LITTLE_ENDIAN));
      a3 = a3.add(FloatVector.fromMemorySegment(VectorMatmul.F, buffer, b + 3 * step, ByteOrder.LITTLE_ENDIAN));
    }
    return a0.add(a1).add(a2.add(a3)).reduceLanes(VectorOperators.ADD);
  }

  @Override
  public void close() {
    arena.close();
  }
}
