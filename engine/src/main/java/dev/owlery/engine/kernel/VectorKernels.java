package dev.owlery.engine.kernel;

import dev.owlery.engine.tensor.DType;
import dev.owlery.engine.tensor.Matrix;
import java.nio.ByteOrder;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.IntConsumer;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The Vector API kernels: matmul reads F32/F16/BF16 weights in place and splits its rows over one
 * bounded {@link ComputePool} owned by this object; the reductions (dot, RMSNorm) use several
 * accumulators. SiLU-times-up and quick GELU run vector exponentials (within about an ulp of the
 * reference's {@code Math.exp}) in chunks over the pool: as reference loops on one thread they took
 * about 5% of a 2,032-token prefill and of the vision tower. LayerNorm is vectorised on the
 * calling thread; softmax, whose cost is negligible next to matmul, is the reference code.
 */
public final class VectorKernels implements Kernels, AutoCloseable {

  private static final VectorSpecies<Float> F = VectorMatmul.F;
  private static final int L = F.length();
  /** Below this many multiply-adds a matmul runs on the calling thread only. */
  private static final long PARALLEL_THRESHOLD = 1L << 15;

  private final ScalarKernels reference = new ScalarKernels();
  private final ComputePool pool;
  private final ThreadLocal<MatmulTask> tasks;
  private final ThreadLocal<ElementwiseTask> elementwise = ThreadLocal.withInitial(ElementwiseTask::new);
  private final ThreadLocal<RowsTask> rowTasks = ThreadLocal.withInitial(RowsTask::new);
  private final ThreadLocal<LayerNormRows> layerNorms = ThreadLocal.withInitial(LayerNormRows::new);
  private final ThreadLocal<float[]> biasRow = ThreadLocal.withInitial(() -> new float[0]);
  private final BlockedAttention attention;
  /** Per F16 matrix, its zero-exponent halves at the dot products' head: for calls of few tokens. */
  private final WeakIdentityCache<Matrix, ZeroExponentHalves> zeroExponentHalves = new WeakIdentityCache<>();

  /** Kernels splitting each matmul over {@code numThreads} threads (the caller included). */
  public VectorKernels(int numThreads) {
    this.pool = new ComputePool(numThreads);
    this.tasks = ThreadLocal.withInitial(() -> new MatmulTask(numThreads));
    this.attention = new BlockedAttention(pool);
  }

  public int numThreads() {
    return pool.numThreads();
  }

  /** The threads these kernels split a call over, for kernels that forward to these and split their own calls. */
  public ComputePool pool() {
    return pool;
  }

  @Override
  public void matmul(Matrix w, float[] x, int xOffset, float[] out, int outOffset, int numTokens) {
    int rows = w.rows();
    MatmulTask task = tasks.get();
    boolean alone = (long) rows * w.cols() * numTokens < PARALLEL_THRESHOLD || pool.numThreads() == 1;
    ZeroExponentHalves zeros = w.dtype() == DType.F16 && numTokens < TileKernels.TOKENS
        ? zeroExponentHalves.get(w, m -> new ZeroExponentHalves(m, VectorMatmul.head(m, VectorMatmul.load16Bytes())))
        : null;
    task.prepare(w, zeros, x, xOffset, out, outOffset, numTokens, alone ? 1 : pool.numThreads());
    try {
      if (task.transposing()) {
        // the activations' token blocks transposed by every thread, then the rows: two calls, so
        // that no thread reads a block before it is written
        runTask(task, alone);
        if (task.rescaleTransposed()) {
          runTask(task, alone);
        }
        task.startRows();
      }
      runTask(task, alone);
    } finally {
      task.clear();
    }
  }

  /** Matrices whose zero-exponent lists these kernels hold. */
  int zeroExponentListsHeld() {
    return zeroExponentHalves.size();
  }

  private void runTask(MatmulTask task, boolean alone) {
    if (alone) {
      task.runShare();
    } else {
      pool.run(task);
    }
  }

  @Override
  public void rmsNorm(float[] x, int xOffset, Matrix weight, float eps, float[] out, int outOffset, int size) {
    float sumSquares = sumOfSquares(x, xOffset, size);
    float scale = (float) (1.0 / Math.sqrt(sumSquares / size + eps));
    int i = 0;
    if (weight.dtype() == DType.F32) {
      // the reference's rounding: x * scale first, then the weight
      long w0 = weight.rowByteOffset(0);
      for (; i + L <= size; i += L) {
        FloatVector.fromArray(F, x, xOffset + i).mul(scale)
            .mul(FloatVector.fromMemorySegment(F, weight.data(), w0 + 4L * i, ByteOrder.LITTLE_ENDIAN))
            .intoArray(out, outOffset + i);
      }
    }
    for (; i < size; i++) {
      float normalised = x[xOffset + i] * scale;
      out[outOffset + i] = weight.get(0, i) * normalised;
    }
  }

  private static float sumOfSquares(float[] x, int offset, int size) {
    FloatVector acc0 = FloatVector.zero(F);
    FloatVector acc1 = FloatVector.zero(F);
    int i = 0;
    for (; i + 2 * L <= size; i += 2 * L) {
      FloatVector a = FloatVector.fromArray(F, x, offset + i);
      FloatVector b = FloatVector.fromArray(F, x, offset + i + L);
      acc0 = a.fma(a, acc0);
      acc1 = b.fma(b, acc1);
    }
    float sum = acc0.add(acc1).reduceLanes(VectorOperators.ADD);
    for (; i < size; i++) {
      sum += x[offset + i] * x[offset + i];
    }
    return sum;
  }

  @Override
  public void layerNorm(float[] x, int xOffset, Matrix weight, Matrix bias, float eps, float[] out, int outOffset,
      int numTokens, int size) {
    LayerNormRows rows = layerNorms.get();
    rows.prepare(weight, bias, size);
    for (int t = 0; t < numTokens; t++) {
      rows.row(x, xOffset + t * size, eps, out, outOffset + t * size, size);
    }
  }

  @Override
  public void siluMul(float[] gate, int gateOffset, float[] up, int upOffset, float[] out, int outOffset, int size) {
    runElementwise(ElementwiseTask.SILU_MUL, gate, gateOffset, up, upOffset, out, outOffset, size);
  }

  @Override
  public void quickGelu(float[] x, int offset, int size) {
    runElementwise(ElementwiseTask.QUICK_GELU, x, offset, null, 0, x, offset, size);
  }

  private void runElementwise(int op, float[] a, int aOffset, float[] b, int bOffset, float[] out, int outOffset,
      int size) {
    ElementwiseTask task = elementwise.get();
    task.prepare(op, a, aOffset, b, bOffset, out, outOffset, size);
    try {
      if (size < 2 * ElementwiseTask.CHUNK || pool.numThreads() == 1) {
        task.runShare();
      } else {
        pool.run(task);
      }
    } finally {
      task.clear();
    }
  }

  @Override
  public void softmax(float[] x, int offset, int size) {
    reference.softmax(x, offset, size);
  }

  @Override
  public float dot(float[] a, int aOffset, float[] b, int bOffset, int size) {
    FloatVector acc0 = FloatVector.zero(F);
    FloatVector acc1 = FloatVector.zero(F);
    int i = 0;
    for (; i + 2 * L <= size; i += 2 * L) {
      acc0 = FloatVector.fromArray(F, a, aOffset + i).fma(FloatVector.fromArray(F, b, bOffset + i), acc0);
      acc1 = FloatVector.fromArray(F, a, aOffset + i + L).fma(FloatVector.fromArray(F, b, bOffset + i + L), acc1);
    }
    float sum = acc0.add(acc1).reduceLanes(VectorOperators.ADD);
    for (; i < size; i++) {
      sum += a[aOffset + i] * b[bOffset + i];
    }
    return sum;
  }

  @Override
  public void axpy(float alpha, float[] x, int xOffset, float[] y, int yOffset, int size) {
    int i = 0;
    for (; i + L <= size; i += L) {
      FloatVector.fromArray(F, x, xOffset + i)
          .mul(alpha)
          .add(FloatVector.fromArray(F, y, yOffset + i))
          .intoArray(y, yOffset + i);
    }
    for (; i < size; i++) {
      y[yOffset + i] += alpha * x[xOffset + i];
    }
  }

  @Override
  public void attention(float[] q, int qOffset, KeyValueRows kv, AttentionShape shape, AttentionMask mask, int numQueries,
      int numKeys, float[] out, int outOffset) {
    AttentionShape.checkCall(mask, numQueries, numKeys);
    long start = System.nanoTime();
    attention.run(q, qOffset, kv, shape, mask, numQueries, numKeys, out, outOffset);
    AttentionTime.add(System.nanoTime() - start);
  }

  @Override
  public void addBias(float[] x, int xOffset, Matrix bias, int numTokens, int size) {
    // the bias row read once per call (Matrix.get per element and token was 4% of the vision tower)
    float[] row = biasRow.get();
    if (row.length < size) {
      row = new float[size];
      biasRow.set(row);
    }
    for (int i = 0; i < size; i++) {
      row[i] = bias.get(0, i);
    }
    for (int t = 0; t < numTokens; t++) {
      axpy(1f, row, 0, x, xOffset + t * size, size);
    }
  }

  @Override
  public void forEachRow(int numRows, IntConsumer row) {
    if (numRows < RowsTask.MIN_ROWS || pool.numThreads() == 1) {
      Kernels.super.forEachRow(numRows, row);
      return;
    }
    RowsTask task = rowTasks.get();
    task.prepare(numRows, row, pool.numThreads());
    try {
      pool.run(task);
    } finally {
      task.clear();
    }
  }

  @Override
  public String name() {
    return "vector-" + F.vectorBitSize();
  }

  /** Stops the worker threads; later matmuls run on the calling thread. */
  @Override
  public void close() {
    pool.close();
  }

  /**
   * One thread's LayerNorm rows. Weight and bias are read once per call into float32 rows (the
   * reference's {@code Matrix.get} per element and token made it 1.9 ns per element, this 0.3: 100
   * ms of a ViT-L/14 448 image); mean and variance are vector sums, so they differ from the
   * reference's running sums in rounding only; the affine step keeps the reference's order. On the
   * caller's thread only: a 1,025 x 1,024 call is memory-bound (0.29 ms on one thread, 0.38 split
   * over two).
   */
  private static final class LayerNormRows {
    private float[] weight = new float[0];
    private float[] bias = new float[0];

    void prepare(Matrix weight, Matrix bias, int size) {
      if (this.weight.length < size) {
        this.weight = new float[size];
        this.bias = new float[size];
      }
      for (int i = 0; i < size; i++) {
        this.weight[i] = weight.get(0, i);
        this.bias[i] = bias.get(0, i);
      }
    }

    void row(float[] x, int in, float eps, float[] out, int to, int size) {
      FloatVector acc0 = FloatVector.zero(F);
      FloatVector acc1 = FloatVector.zero(F);
      int i = 0;
      for (; i + 2 * L <= size; i += 2 * L) {
        acc0 = acc0.add(FloatVector.fromArray(F, x, in + i));
        acc1 = acc1.add(FloatVector.fromArray(F, x, in + i + L));
      }
      float sum = acc0.add(acc1).reduceLanes(VectorOperators.ADD);
      for (; i < size; i++) {
        sum += x[in + i];
      }
      float mean = sum / size;
      acc0 = FloatVector.zero(F);
      acc1 = FloatVector.zero(F);
      i = 0;
      for (; i + 2 * L <= size; i += 2 * L) {
        FloatVector d0 = FloatVector.fromArray(F, x, in + i).sub(mean);
        FloatVector d1 = FloatVector.fromArray(F, x, in + i + L).sub(mean);
        acc0 = d0.fma(d0, acc0);
        acc1 = d1.fma(d1, acc1);
      }
      float squares = acc0.add(acc1).reduceLanes(VectorOperators.ADD);
      for (; i < size; i++) {
        float d = x[in + i] - mean;
        squares += d * d;
      }
      float scale = (float) (1.0 / Math.sqrt(squares / size + eps));
      i = 0;
      for (; i + L <= size; i += L) {
        FloatVector.fromArray(F, x, in + i).sub(mean).mul(scale).mul(FloatVector.fromArray(F, weight, i))
            .add(FloatVector.fromArray(F, bias, i))
            .intoArray(out, to + i);
      }
      for (; i < size; i++) {
        out[to + i] = (x[in + i] - mean) * scale * weight[i] + bias[i];
      }
    }
  }

  /** One thread's reusable {@link #forEachRow} call: runs of rows claimed by every thread of the pool. */
  private static final class RowsTask implements ComputePool.SharedTask {
    /**
     * Fewest rows shared out. The 1.1B's per-token work between products (its norms, RoPE and cache
     * writes, column-block copies; rows of 2,048 floats), Q8_0 prefill, one JVM: at 2,032 tokens
     * 226-332 ms on 1 thread and 159-176 on 2 when shared out; at 128 tokens 10.4-10.7 ms on the
     * caller alone but 12.6-17.6 shared out on 2 (waking the worker and moving rows out of the
     * caller's L2 cost more than half the rows save). Decode's and batched decode's rows never are.
     */
    static final int MIN_ROWS = 512;
    /** Runs per thread a call is cut into: a thread that starts late takes fewer. */
    private static final int RUNS_PER_THREAD = 4;
    private final AtomicInteger nextRun = new AtomicInteger();
    private int numRows;
    private int runRows;
    private IntConsumer row;

    void prepare(int numRows, IntConsumer row, int numThreads) {
      this.numRows = numRows;
      this.row = row;
      this.runRows = Math.ceilDiv(numRows, RUNS_PER_THREAD * numThreads);
      nextRun.set(0); // volatile write publishes the fields above to the workers
    }

    void clear() {
      row = null;
    }

    @Override
    public void runShare() {
      int runs = Math.ceilDiv(numRows, runRows);
      for (int run = nextRun.getAndIncrement(); run < runs; run = nextRun.getAndIncrement()) {
        for (int t = run * runRows, end = Math.min(numRows, t + runRows); t < end; t++) {
          row.accept(t);
        }
      }
    }
  }

  /** One thread's reusable element-wise call: chunks of the elements are claimed by every thread of the pool. */
  private static final class ElementwiseTask implements ComputePool.SharedTask {
    static final int SILU_MUL = 0;
    static final int QUICK_GELU = 1;
    /** Elements per chunk: a multiple of every vector length. */
    static final int CHUNK = 1 << 14;
    private static final float QUICK_GELU_SLOPE = ScalarKernels.QUICK_GELU_SLOPE;
    private final AtomicInteger nextChunk = new AtomicInteger();
    private int op;
    private float[] a;
    private int aOffset;
    private float[] b;
    private int bOffset;
    private float[] out;
    private int outOffset;
    private int size;

    void prepare(int op, float[] a, int aOffset, float[] b, int bOffset, float[] out, int outOffset, int size) {
      this.op = op;
      this.a = a;
      this.aOffset = aOffset;
      this.b = b;
      this.bOffset = bOffset;
      this.out = out;
      this.outOffset = outOffset;
      this.size = size;
      nextChunk.set(0); // volatile write publishes the fields above to the workers
    }

    void clear() {
      a = null;
      b = null;
      out = null;
    }

    @Override
    public void runShare() {
      int numChunks = Math.ceilDiv(size, CHUNK);
      for (int chunk = nextChunk.getAndIncrement(); chunk < numChunks; chunk = nextChunk.getAndIncrement()) {
        int from = chunk * CHUNK;
        int to = Math.min(size, from + CHUNK);
        if (op == SILU_MUL) {
          siluMul(from, to);
        } else {
          quickGelu(from, to);
        }
      }
    }

    /** {@code out = g / (1 + exp(-g)) * up}, the reference's order of operations. */
    private void siluMul(int from, int to) {
      int i = from;
      for (; i + L <= to; i += L) {
        FloatVector g = FloatVector.fromArray(F, a, aOffset + i);
        FloatVector silu = g.div(g.neg().lanewise(VectorOperators.EXP).add(1f));
        silu.mul(FloatVector.fromArray(F, b, bOffset + i)).intoArray(out, outOffset + i);
      }
      for (; i < to; i++) {
        float g = a[aOffset + i];
        out[outOffset + i] = g / (1f + (float) Math.exp(-g)) * b[bOffset + i];
      }
    }

    /** {@code x = x * (1 / (1 + exp(-(1.702 x))))}, the reference's order of operations. */
    private void quickGelu(int from, int to) {
      int i = from;
      for (; i + L <= to; i += L) {
        FloatVector v = FloatVector.fromArray(F, a, aOffset + i);
        FloatVector e = v.mul(QUICK_GELU_SLOPE).neg().lanewise(VectorOperators.EXP);
        v.mul(FloatVector.broadcast(F, 1f).div(e.add(1f))).intoArray(out, outOffset + i);
      }
      for (; i < to; i++) {
        float v = a[aOffset + i];
        out[outOffset + i] = v * (1f / (1f + (float) Math.exp(-(QUICK_GELU_SLOPE * v))));
      }
    }
  }

  /**
   * One thread's reusable matmul call: every thread of the pool claims rows, from a range of its own
   * (calls of fewer tokens than the panel kernels take) or in shrinking shares (panels).
   */
  private static final class MatmulTask implements ComputePool.SharedTask {
    /** Rows a thread claims at a time from the front of its own range. */
    private static final int CLAIM_ROWS = 2 * VectorMatmul.ROW_BLOCK;
    /** Rows claimed by the panel kernels: the first row no thread has claimed yet. */
    private final AtomicInteger nextRow = new AtomicInteger();
    /** Rows claimed by the matrix-vector and tile kernels: a contiguous range per thread. */
    private final RowRanges rowRanges;
    private int numThreads;
    private Matrix w;
    private ZeroExponentHalves zeros;
    private float[] x;
    private int xOffset;
    private float[] out;
    private int outOffset;
    private int numTokens;
    private int head;
    private float outScale;
    /** Activations in the pair order of the 16-bit kernels; grows to the largest call, then reused. */
    private float[] pairOrdered = new float[0];
    /** Activations transposed for the panel kernels, or null when the call has too few tokens. */
    private float[] xT;
    private float[] transposed = new float[0];
    /** Token blocks of xT still to be written by {@link #runShare}, 0 when none; and their arguments. */
    private int numTokenBlocks;
    private final AtomicInteger nextTokenBlock = new AtomicInteger();
    private int pairsFrom;
    private float xScale;
    /**
     * Whether the transposing threads also find the activations' largest magnitude (F16): they
     * transpose with the rebias shift of ordinary activations, 0, and {@link #rescaleTransposed}
     * has them transpose again in the rare call that needs another.
     */
    private boolean scanning;
    private final AtomicInteger maxMagnitudeBits = new AtomicInteger();

    MatmulTask(int maxThreads) {
      rowRanges = new RowRanges(maxThreads);
    }

    void prepare(Matrix w, ZeroExponentHalves zeros, float[] x, int xOffset, float[] out, int outOffset, int numTokens,
        int numThreads) {
      this.w = w;
      this.zeros = zeros;
      int cols = w.cols();
      boolean pairs = w.dtype() == DType.F16 || w.dtype() == DType.BF16;
      boolean panel = numTokens >= PanelKernels.MIN_TOKENS;
      float xScale = 1f;
      this.outScale = 1f;
      this.scanning = false;
      switch (w.dtype()) {
        case F32 -> this.head = VectorMatmul.head(w, F.vectorByteSize());
        case F16, BF16 -> {
          this.head = VectorMatmul.head(w, VectorMatmul.load16Bytes());
          if (w.dtype() == DType.F16 && panel) {
            // the scan shared among the threads with the transposing (runShare): on the caller alone
            // it kept the other threads waiting for 2% of a two-thread prefill
            scanning = true;
            maxMagnitudeBits.set(0);
            xScale = Math.scalb(1f, VectorMatmul.F16_REBIAS_EXPONENT);
          } else if (w.dtype() == DType.F16) {
            int rebias = VectorMatmul.F16_REBIAS_EXPONENT;
            int shift = VectorMatmul.f16RebiasShift(x, xOffset, Math.multiplyExact(numTokens, cols), rebias);
            xScale = Math.scalb(1f, rebias - shift);
            outScale = Math.scalb(1f, shift);
          }
        }
        case Q8_0, Q4_0 -> this.head = 0;
        case I64, I32, U8 -> throw new AssertionError("Matrix rejects non-weight dtypes");
      }
      this.x = x;
      this.xOffset = xOffset;
      this.xT = null;
      this.numTokenBlocks = 0;
      if (panel) {
        // the panel kernels read only the transposed copy: permuted to pair order (16-bit weights),
        // scaled and transposed in one pass, by token blocks shared among the threads (runShare)
        int size = Math.multiplyExact(cols, PanelKernels.paddedTokens(numTokens));
        if (transposed.length < size) {
          transposed = new float[size];
        }
        xT = transposed;
        this.pairsFrom = pairs ? head : cols;
        this.xScale = xScale;
        this.numTokenBlocks = PanelKernels.tokenBlocks(numTokens);
        nextTokenBlock.set(0);
      } else if (pairs) {
        int size = Math.multiplyExact(numTokens, cols);
        if (pairOrdered.length < size) {
          pairOrdered = new float[size];
        }
        VectorMatmul.permuteForPairs(x, xOffset, cols, numTokens, head, xScale, pairOrdered);
        this.x = pairOrdered;
        this.xOffset = 0;
      }
      this.out = out;
      this.outOffset = outOffset;
      this.numTokens = numTokens;
      this.numThreads = numThreads;
      if (xT == null) {
        rowRanges.reset(w.rows(), numThreads, VectorMatmul.ROW_BLOCK);
      }
      nextRow.set(0); // volatile write publishes the fields above to the workers
    }

    void clear() {
      numTokenBlocks = 0;
      w = null;
      zeros = null;
      x = null;
      xT = null;
      out = null;
    }

    /** Whether the call's activations are still to be transposed: {@link #runShare} does that first. */
    boolean transposing() {
      return numTokenBlocks > 0;
    }

    /**
     * After the transposing: whether the activations the threads scanned need another rebias shift
     * than the one they were transposed with (some |x| >= 2^15), in which case {@link #runShare}
     * transposes them again with it.
     */
    boolean rescaleTransposed() {
      if (!scanning) {
        return false;
      }
      scanning = false;
      int shift = VectorMatmul.f16RebiasShift(maxMagnitudeBits.get(), VectorMatmul.F16_REBIAS_EXPONENT);
      if (shift == 0) {
        return false;
      }
      xScale = Math.scalb(1f, VectorMatmul.F16_REBIAS_EXPONENT - shift);
      outScale = Math.scalb(1f, shift);
      nextTokenBlock.set(0); // volatile write publishes the scales to the workers
      return true;
    }

    /** Ends the transposing: {@link #runShare} computes rows from now on. */
    void startRows() {
      numTokenBlocks = 0;
      nextRow.set(0); // volatile write publishes it to the workers
    }

    @Override
    public void runShare() {
      if (numTokenBlocks > 0) {
        int cols = w.cols();
        for (int b = nextTokenBlock.getAndIncrement(); b < numTokenBlocks; b = nextTokenBlock.getAndIncrement()) {
          if (scanning) {
            int from = PanelKernels.firstToken(b);
            int to = Math.min(numTokens, PanelKernels.firstToken(b + 1));
            int bits = VectorMatmul.maxMagnitudeBits(x, xOffset + from * cols, (to - from) * cols);
            maxMagnitudeBits.accumulateAndGet(bits, Math::max);
          }
          PanelKernels.transposeBlocks(x, xOffset, cols, numTokens, pairsFrom, xScale, xT, b, b + 1);
        }
        return;
      }
      int part = xT == null ? rowRanges.ownPart() : -1;
      for (long rows = claim(part); rows >= 0; rows = claim(part)) {
        VectorMatmul.rows(w, zeros, x, xOffset, xT, out, outOffset, numTokens, RowRanges.from(rows), RowRanges.to(rows), head,
            outScale);
      }
    }

    /**
     * The next rows for a thread ({@code from << 32 | to}), -1 when none are left. Calls of fewer
     * tokens than the panels take are bound by memory: each thread claims from a range of rows of
     * its own, front to back, one sequential stream, and helps the others once it is done
     * ({@code part}, its range). Shares claimed in turns started a new stream at each share: in
     * decode at 2 threads, ranges measured 1.007-1.027x the tokens/s (1.1B and the 7B's widths,
     * F16 and Q8_0, medians of 7-15 rounds on one decoder, the two taking turns). Panel rows
     * ({@code part} -1) are claimed in shares that shrink as the rows run out (guided
     * self-scheduling): large shares first (widened in blocks of up to PanelKernels.BLOCK_ROWS),
     * and the threads finish within a small share of each other; equal shares of whole blocks left a
     * thread idle for up to a block's time per call.
     */
    private long claim(int part) {
      if (part >= 0) {
        return rowRanges.claim(part, CLAIM_ROWS);
      }
      int rows = w.rows();
      int granule = PanelKernels.SHARE_GRANULE;
      for (int from = nextRow.get(); from < rows; from = nextRow.get()) {
        int share = Math.ceilDiv(Math.max(1, (rows - from) / (2 * numThreads)), granule) * granule;
        int to = Math.min(rows, from + share);
        if (nextRow.compareAndSet(from, to)) {
          return RowRanges.pack(from, to);
        }
      }
      return -1;
    }
  }
}
