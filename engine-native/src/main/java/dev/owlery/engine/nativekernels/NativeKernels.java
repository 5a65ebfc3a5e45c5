package dev.owlery.engine.nativekernels;

import dev.owlery.engine.kernel.ComputePool;
import dev.owlery.engine.kernel.ForwardingKernels;
import dev.owlery.engine.kernel.Kernels;
import dev.owlery.engine.kernel.VectorKernels;
import dev.owlery.engine.tensor.DType;
import dev.owlery.engine.tensor.Matrix;
import java.lang.foreign.MemorySegment;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The vector kernels with decode's matrix-vector products (one token) in Owlery's C
 * ({@link NativeCpuLibrary}): Q8_0 weights times activations quantized to Q8_0, multiplied int8 by
 * int8 as llama.cpp does ({@link Q8Activations}; AVX-512 VNNI, else AVX2), and F16 weights times
 * float32 activations (AVX-512), both reading four rows a quarter of the call apart with software
 * prefetch. Calls of several tokens, other dtypes, F16 rows whose width is not a multiple of 32
 * and every other operation go to {@link VectorKernels}, whose threads the products share.
 *
 * <p>Q8_0 here is not the vector kernels' arithmetic: they multiply the int8 weights by the float32
 * activations, these by the activations rounded to 8 bits per 32-value block (relative error up to
 * about 1/254 of the block's largest value per activation). Tests state the effect on the models'
 * logits and greedy tokens. F16 differs from the vector kernels only in the order of the sums.
 */
public final class NativeKernels extends ForwardingKernels implements AutoCloseable {

  /** Below this many rows a product runs on the calling thread alone. */
  private static final int PARALLEL_ROWS = 64;
  /**
   * Parts per thread a product is cut into, claimed one at a time: a worker that starts late takes
   * fewer. 2 threads, the 1.1B decoding, one JVM per setting taking turns three times: Q8_0 17.2-23.1
   * tokens/s with 4 parts a thread, 18.2-21.4 with 16, 17.8-19.8 with 32; F16 9.6-10.9, 10.8-12.4,
   * 10.3-12.6; with 1 part 13.4-13.5 (Q8_0) in an earlier, slower hour against 14.7-16.3 with 4.
   */
  private static final int PARTS_PER_THREAD = 16;

  private final NativeCpuLibrary library;
  private final VectorKernels vector;
  private final boolean vnni;
  private final ThreadLocal<Call> calls;

  /**
   * Kernels on {@code numThreads} threads (the vector kernels' pool, the caller among them).
   *
   * @throws NativeKernelsUnavailableException when the library cannot be compiled or loaded, or the
   *     CPU lacks AVX2, FMA and F16C
   */
  public NativeKernels(int numThreads) {
    this(NativeCpuLibrary.load(), numThreads, true);
  }

  /** Package-private: a test picks the Q8_0 kernel's AVX2 form on a VNNI CPU. */
  NativeKernels(NativeCpuLibrary library, int numThreads, boolean vnniWhereAvailable) {
    if (!library.runsQ8_0()) {
      throw new NativeKernelsUnavailableException(
          "the native kernels need AVX2, FMA and F16C, which this CPU does not report", null);
    }
    this.library = library;
    this.vnni = vnniWhereAvailable && library.hasVnni();
    this.vector = new VectorKernels(numThreads);
    this.calls = ThreadLocal.withInitial(Call::new);
  }

  @Override
  protected Kernels delegate() {
    return vector;
  }

  /** The library these kernels call. */
  public NativeCpuLibrary library() {
    return library;
  }

  /** Whether a product over {@code w} with {@code numTokens} tokens runs here (else on the vector kernels). */
  public boolean runsNatively(Matrix w, int numTokens) {
    return numTokens == 1 && w.rows() > 0
        && (w.dtype() == DType.Q8_0 || w.dtype() == DType.F16 && library.runsF16() && w.cols() % 32 == 0);
  }

  @Override
  public void matmul(Matrix w, float[] x, int xOffset, float[] out, int outOffset, int numTokens) {
    if (!runsNatively(w, numTokens)) {
      vector.matmul(w, x, xOffset, out, outOffset, numTokens);
      return;
    }
    Objects.checkFromIndexSize(xOffset, w.cols(), x.length);
    Objects.checkFromIndexSize(outOffset, w.rows(), out.length);
    Call call = calls.get();
    call.prepare(w, x, xOffset, out, outOffset);
    try {
      if (w.rows() < PARALLEL_ROWS || vector.numThreads() == 1) {
        call.runShare();
      } else {
        vector.pool().run(call);
      }
    } finally {
      call.clear();
    }
  }

  /** "native-vnni" or "native-avx2": the Q8_0 kernel's form. */
  @Override
  public String name() {
    return vnni ? "native-vnni" : "native-avx2";
  }

  /** {@code KernelsProvider}'s way to these kernels ({@code -Dowlery.kernels=native}, a shard worker's {@code --kernels}). */
  public static final class Factory implements dev.owlery.engine.kernel.NativeKernelsFactory {
    @Override
    public Kernels create(int numThreads) {
      return new NativeKernels(numThreads);
    }
  }

  /** Stops the vector kernels' threads; no call may be running. */
  @Override
  public void close() {
    vector.close();
  }

  /**
   * One product, shared out as parts of contiguous rows: each thread of the pool claims parts until
   * none is left (a thread the pool could not give this call takes no part, so one caller alone
   * does them all).
   */
  private final class Call implements ComputePool.SharedTask {
    private final Q8Activations activations = new Q8Activations();
    private final AtomicInteger nextPart = new AtomicInteger();
    private Matrix w;
    private MemorySegment x;
    private MemorySegment xq;
    private MemorySegment xd;
    private float[] out;
    private int outOffset;
    private int parts;
    private int rowsPerPart;

    void prepare(Matrix w, float[] x, int xOffset, float[] out, int outOffset) {
      this.w = w;
      this.out = out;
      this.outOffset = outOffset;
      if (w.dtype() == DType.Q8_0) {
        activations.quantize(x, xOffset, w.cols());
        this.xq = MemorySegment.ofArray(activations.values());
        this.xd = MemorySegment.ofArray(activations.scales());
      } else {
        this.x = MemorySegment.ofArray(x).asSlice((long) xOffset * Float.BYTES, (long) w.cols() * Float.BYTES);
      }
      int threads = vector.numThreads();
      this.parts = w.rows() < PARALLEL_ROWS ? 1 : threads * PARTS_PER_THREAD;
      this.rowsPerPart = Math.ceilDiv(Math.ceilDiv(w.rows(), parts), 16) * 16;
      nextPart.set(0);
    }

    @Override
    public void runShare() {
      for (int part = nextPart.getAndIncrement(); part < parts; part = nextPart.getAndIncrement()) {
        int from = part * rowsPerPart;
        int rows = Math.min(rowsPerPart, w.rows() - from);
        if (rows > 0) {
          run(from, rows);
        }
      }
    }

    private void run(int from, int rows) {
      MemorySegment weights = w.data().asSlice(w.rowByteOffset(from));
      MemorySegment results = MemorySegment.ofArray(out)
          .asSlice((long) (outOffset + from) * Float.BYTES, (long) rows * Float.BYTES);
      if (w.dtype() == DType.Q8_0) {
        library.q8_0Matvec(vnni, weights, w.rowStrideBytes(), rows, w.cols() / 32, xq, xd, results);
      } else {
        library.f16Matvec(weights, w.rowStrideBytes(), rows, w.cols(), x, results);
      }
    }

    void clear() {
      w = null;
      x = null;
      xq = null;
      xd = null;
      out = null;
    }
  }
}
