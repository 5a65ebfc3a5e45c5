package dev.owlery.engine.nativekernels;

import dev.owlery.engine.kernel.AttentionMask;
import dev.owlery.engine.kernel.AttentionShape;
import dev.owlery.engine.kernel.AttentionTime;
import dev.owlery.engine.kernel.ComputePool;
import dev.owlery.engine.kernel.ForwardingKernels;
import dev.owlery.engine.kernel.KeyValueRows;
import dev.owlery.engine.kernel.Kernels;
import dev.owlery.engine.kernel.VectorKernels;
import dev.owlery.engine.tensor.DType;
import dev.owlery.engine.tensor.Matrix;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The vector kernels with their Q8_0, Q4_0, F16 and BF16 products partly in Owlery's C ({@link NativeCpuLibrary}):
 * <ul>
 *   <li>one token (decode): Q8_0 and Q4_0 weights times activations quantized to Q8_0, multiplied
 *       int8 by int8 as llama.cpp does ({@link Q8Activations}; AVX-512 VNNI, else AVX2), and F16 or BF16
 *       weights times float32 activations (AVX-512), all reading four rows a quarter of the call
 *       apart with software prefetch;
 *   <li>several tokens (prefill, batched decode), Q8_0 and Q4_0: on AMX (Q8_0 only) 16 rows by 16
 *       tokens by one block per tile product ({@code tdpbssd}), else on AVX-512 VNNI 12 rows by 16 tokens
 *       ({@code vpdpbusd}, a token per lane), both with each block's exact int32 sums scaled into
 *       float32 sums, the same bits; each matrix's block scales are kept as floats (a table of a
 *       ninth of its size), and for VNNI each block's weight sum too (another ninth);
 *   <li>a few tokens (2 to {@value #HALF_MAX_TOKENS}: batched decode), F16 and BF16: 4 rows by 6 tokens
 *       at a time on AVX-512 (more tokens go to the vector kernels, faster there from 64).
 * </ul>
 * F32 weights, F16 and BF16 with more tokens or widths not a multiple of 32, and every other operation go
 * to {@link VectorKernels}, whose threads the products share. Made with BF16 prompts
 * ({@code native-bf16}), prompts multiply in BF16 on AVX512_BF16: attention calls of
 * {@value #BF16_ATTENTION_QUERIES} queries or more (prompts, the vision tower; {@link Bf16Attention}),
 * and BF16 weights' products of more than {@value #HALF_MAX_TOKENS} tokens, their activations
 * rounded to BF16 ({@code vdpbf16ps}, 6 rows by 4 tokens at a time); decode keeps float32.
 *
 * <p>Q8_0 and Q4_0 here are not the vector kernels' arithmetic: they multiply the weights by the
 * float32 activations, these by the activations rounded to 8 bits per 32-value block (relative error
 * up to about 1/254 of the block's largest value per activation). Tests state the effect on the
 * models' logits and greedy tokens. F16 and BF16 differ from the vector kernels only in the order of
 * the sums.
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
  /**
   * Queries from which attention runs in BF16 when asked: an item rounds its kv head's keys and
   * values to BF16 once, which a prompt's query blocks share and one decoded token's does not.
   */
  static final int BF16_ATTENTION_QUERIES = 16;
  /**
   * Tokens up to which an F16 (or BF16) product of several tokens runs here: one thread, 4096 x 4096, the C
   * kernel ran 106-111, 120-128 and 116-138 GFLOP/s at 16, 32 and 64 tokens, the vector kernels 53,
   * 65 and 118 (137 at 128, where the C kernel ran 108-112).
   */
  static final int HALF_MAX_TOKENS = 32;

  private final NativeCpuLibrary library;
  private final VectorKernels vector;
  private final boolean vnni;
  /** How Q8_0 products of several tokens run: on AMX, else on AVX-512 VNNI, else on the vector kernels. */
  private final SeveralTokens severalTokens;
  private final ThreadLocal<Call> calls;
  /** Per Q8_0 or Q4_0 matrix multiplied with several tokens, its block table. */
  private final Map<Matrix, BlockTable> blockTables = new ConcurrentHashMap<>();
  private final Arena tableArena = Arena.ofShared();
  /** Attention in BF16 for calls of many queries, or null: the vector kernels' float32 attention throughout. */
  private final Bf16Attention bf16Attention;
  /** Whether BF16 weights' products of more than {@value #HALF_MAX_TOKENS} tokens run in BF16 arithmetic here. */
  private final boolean bf16Products;

  /**
   * Kernels on {@code numThreads} threads (the vector kernels' pool, the caller among them).
   *
   * @throws NativeKernelsUnavailableException when the library cannot be compiled or loaded, or the
   *     CPU lacks AVX2, FMA and F16C
   */
  public NativeKernels(int numThreads) {
    this(numThreads, false);
  }

  /**
   * Kernels on {@code numThreads} threads, with prompts in BF16 arithmetic when {@code bf16Prompts}
   * ({@code native-bf16}): attention's products, and BF16 weights' products of more than
   * {@value #HALF_MAX_TOKENS} tokens (activations rounded to BF16, as llama.cpp multiplies BF16).
   *
   * @throws NativeKernelsUnavailableException as {@link #NativeKernels(int)}, and when BF16 prompts
   *     are asked for on a CPU without AVX512_BF16
   */
  public NativeKernels(int numThreads, boolean bf16Prompts) {
    this(NativeCpuLibrary.load(), numThreads, true, true, bf16Prompts);
  }

  /**
   * Package-private: a test picks the one-token Q8_0 kernel's AVX2 form on a VNNI CPU, or the VNNI
   * form of several tokens on an AMX CPU.
   */
  NativeKernels(NativeCpuLibrary library, int numThreads, boolean vnniWhereAvailable, boolean amxWhereAvailable,
      boolean bf16Prompts) {
    if (!library.runsQ8_0()) {
      throw new NativeKernelsUnavailableException(
          "the native kernels need AVX2, FMA and F16C, which this CPU does not report", null);
    }
    if (bf16Prompts && !library.hasBf16()) {
      throw new NativeKernelsUnavailableException("native-bf16 needs AVX512_BF16, which this CPU does not report "
          + "(native keeps attention in float32)", null);
    }
    this.library = library;
    this.vnni = vnniWhereAvailable && library.hasVnni();
    this.severalTokens = amxWhereAvailable && library.hasAmx() ? SeveralTokens.AMX
        : library.hasVnni() ? SeveralTokens.VNNI : SeveralTokens.VECTOR;
    this.vector = new VectorKernels(numThreads);
    this.calls = ThreadLocal.withInitial(Call::new);
    this.bf16Attention = bf16Prompts ? new Bf16Attention(library, vector.pool()) : null;
    this.bf16Products = bf16Prompts;
  }

  @Override
  protected Kernels delegate() {
    return vector;
  }

  /** Whether a product over {@code w} with {@code numTokens} tokens runs here (else on the vector kernels). */
  public boolean runsNatively(Matrix w, int numTokens) {
    if (w.rows() == 0 || numTokens < 1) {
      return false;
    }
    if (numTokens > 1) {
      return formFor(w, numTokens) != SeveralTokens.VECTOR;
    }
    return w.dtype() == DType.Q8_0 || w.dtype() == DType.Q4_0 || runsHalf(w);
  }

  @Override
  public void matmul(Matrix w, float[] x, int xOffset, float[] out, int outOffset, int numTokens) {
    if (!runsNatively(w, numTokens)) {
      vector.matmul(w, x, xOffset, out, outOffset, numTokens);
      return;
    }
    Objects.checkFromIndexSize(xOffset, (long) numTokens * w.cols(), x.length);
    Objects.checkFromIndexSize(outOffset, (long) numTokens * w.rows(), out.length);
    Call call = calls.get();
    call.prepare(w, x, xOffset, out, outOffset, numTokens);
    try {
      boolean alone = w.rows() < PARALLEL_ROWS || vector.numThreads() == 1;
      if (call.preparingTokens()) {
        // the tokens' tiles quantized and packed (or rounded to BF16) by every thread, then the
        // rows: two calls, so that no thread reads a tile before it is written
        run(call, alone);
        call.startRows();
      }
      run(call, alone);
    } finally {
      call.clear();
    }
  }

  private void run(Call call, boolean alone) {
    if (alone) {
      call.runShare();
    } else {
      vector.pool().run(call);
    }
  }

  /**
   * Attention of {@value #BF16_ATTENTION_QUERIES} queries or more in BF16 where these kernels were
   * made so and the head's width is a multiple of 16; else the vector kernels' float32 attention.
   */
  @Override
  public void attention(float[] q, int qOffset, KeyValueRows kv, AttentionShape shape, AttentionMask mask,
      int numQueries, int numKeys, float[] out, int outOffset) {
    if (bf16Attention == null || numQueries < BF16_ATTENTION_QUERIES || !Bf16Attention.runs(shape)) {
      vector.attention(q, qOffset, kv, shape, mask, numQueries, numKeys, out, outOffset);
      return;
    }
    AttentionShape.checkCall(mask, numQueries, numKeys);
    Objects.checkFromIndexSize(qOffset, (long) numQueries * shape.rowWidth(), q.length);
    Objects.checkFromIndexSize(outOffset, (long) numQueries * shape.rowWidth(), out.length);
    long start = System.nanoTime();
    bf16Attention.run(q, qOffset, kv, shape, mask, numQueries, numKeys, out, outOffset);
    AttentionTime.add(System.nanoTime() - start);
  }

  /**
   * "native-vnni" or "native-avx2", the one-token Q8_0 kernel's form, with "-bf16" when prompts
   * multiply in BF16.
   */
  @Override
  public String name() {
    return (vnni ? "native-vnni" : "native-avx2") + (bf16Attention != null ? "-bf16" : "");
  }

  /** {@code KernelsProvider}'s way to these kernels ({@code -Dowlery.kernels=native}, a shard worker's {@code --kernels}). */
  public static final class Factory implements dev.owlery.engine.kernel.NativeKernelsFactory {
    @Override
    public Kernels create(int numThreads, boolean bf16Prompts) {
      return new NativeKernels(numThreads, bf16Prompts);
    }
  }

  /** Stops the vector kernels' threads and frees the block tables; no call may be running. */
  @Override
  public void close() {
    vector.close();
    blockTables.clear();
    tableArena.close();
  }

  /**
   * The form of Q8_0 products of several tokens: {@code "amx"}, {@code "vnni"} or {@code "vector"}
   * (Q4_0's is VNNI where the CPU has it).
   */
  public String severalTokensForm() {
    return severalTokens.name().toLowerCase(Locale.ROOT);
  }

  /**
   * Where products of several tokens over {@code w} run: Q8_0 as the CPU allows, Q4_0 on VNNI only, F16
   * and BF16 on AVX-512 (up to {@value #HALF_MAX_TOKENS} tokens).
   */
  private SeveralTokens formFor(Matrix w) {
    return switch (w.dtype()) {
      case Q8_0 -> severalTokens;
      case Q4_0 -> library.hasVnni() ? SeveralTokens.VNNI : SeveralTokens.VECTOR;
      case F16, BF16 -> runsHalf(w) ? SeveralTokens.HALF : SeveralTokens.VECTOR;
      default -> SeveralTokens.VECTOR;
    };
  }

  /**
   * Where a product of {@code numTokens} tokens (more than one) over {@code w} runs: as
   * {@link #formFor(Matrix)} says, but F16 and BF16 only up to {@value #HALF_MAX_TOKENS} tokens,
   * beyond which BF16 runs in BF16 arithmetic where these kernels were made so.
   */
  private SeveralTokens formFor(Matrix w, int numTokens) {
    SeveralTokens form = formFor(w);
    if (form == SeveralTokens.HALF && numTokens > HALF_MAX_TOKENS) {
      return bf16Products && w.dtype() == DType.BF16 ? SeveralTokens.BF16 : SeveralTokens.VECTOR;
    }
    return form;
  }

  /** Whether {@code w} is F16 or BF16 the half-precision kernels take: AVX-512, rows of 32 columns a step. */
  private boolean runsHalf(Matrix w) {
    return (w.dtype() == DType.F16 || w.dtype() == DType.BF16) && library.runsHalf() && w.cols() % 32 == 0;
  }

  /** Made on a matrix's first product of several tokens, kept while these kernels live. */
  private BlockTable blockTable(Matrix w) {
    return blockTables.computeIfAbsent(w, m -> {
      int blocks = m.cols() / 32;
      long entries = (long) Math.ceilDiv(m.rows(), 16) * 16 * blocks;
      MemorySegment scales = tableArena.allocate(entries * Float.BYTES, 64);
      MemorySegment offsets = formFor(m) == SeveralTokens.VNNI
          ? tableArena.allocate(entries * Integer.BYTES, 64) : MemorySegment.NULL;
      library.blockTable(m.dtype() == DType.Q4_0, m.data().asSlice(m.rowByteOffset(0)), m.rowStrideBytes(), m.rows(),
          blocks, scales, offsets);
      return new BlockTable(scales, offsets);
    });
  }

  private enum SeveralTokens {
    AMX(16), VNNI(12), HALF(4), BF16(6), VECTOR(16);

    /** Rows the kernel multiplies together (owlery_cpu.c). */
    final int rowsPerGroup;

    SeveralTokens(int rowsPerGroup) {
      this.rowsPerGroup = rowsPerGroup;
    }
  }

  /**
   * A Q8_0 or Q4_0 matrix's rows' block scales as floats and, for the VNNI form, -128 times each block's sum
   * of weights as int8 ({@link MemorySegment#NULL} otherwise); row-major, zero rows up to a multiple of 16.
   */
  private record BlockTable(MemorySegment scales, MemorySegment offsets) {}

  /**
   * One product, shared out as parts of contiguous rows: each thread of the pool claims parts until
   * none is left (a thread the pool could not give this call takes no part, so one caller alone
   * does them all). A product of several tokens on the Q8_0, Q4_0 or BF16 kernels first has its
   * activations prepared, tile of 16 tokens by tile, shared out the same way: quantized to Q8_0 and
   * packed as the kernels read them, or rounded to BF16. On the calling thread alone, that
   * preparation held the other thread idle: the 1.1B's 2,032-token Q8_0 prompt's products ran 1.78x
   * as fast on 2 threads as on 1.
   */
  private final class Call implements ComputePool.SharedTask {
    /** Tokens a tile of the prepared activations holds: the packed layout's. */
    private static final int TILE_TOKENS = 16;
    private final Q8Activations activations = new Q8Activations(library);
    private final AtomicInteger nextPart = new AtomicInteger();
    private final AtomicInteger nextTile = new AtomicInteger();
    private byte[] packed = new byte[0];
    private float[] tokenScales = new float[0];
    private short[] rounded = new short[0];
    private Matrix w;
    private int numTokens;
    /** The float32 activations, while their tiles are prepared. */
    private float[] source;
    private int sourceOffset;
    /** Tiles of the activations still to be prepared by {@link #runShare}, 0 when none. */
    private int tokenTiles;
    private MemorySegment x;
    private MemorySegment xq;
    private MemorySegment xd;
    private BlockTable table;
    /** Where this product runs when it has several tokens. */
    private SeveralTokens form;
    private float[] out;
    private int outOffset;
    private int parts;
    private int rowsPerPart;

    void prepare(Matrix w, float[] x, int xOffset, float[] out, int outOffset, int numTokens) {
      this.w = w;
      this.out = out;
      this.outOffset = outOffset;
      this.numTokens = numTokens;
      this.form = formFor(w, numTokens);
      this.tokenTiles = 0;
      int cols = w.cols();
      if (form == SeveralTokens.HALF) {
        this.x = MemorySegment.ofArray(x).asSlice((long) xOffset * Float.BYTES, (long) numTokens * cols * Float.BYTES);
      } else if (form == SeveralTokens.BF16) {
        int n = numTokens * cols;
        if (rounded.length < n) {
          rounded = new short[n];
        }
        this.x = MemorySegment.ofArray(rounded);
        prepareTiles(x, xOffset);
      } else if (numTokens == 1) {
        activations.quantize(x, xOffset, cols);
        this.xq = MemorySegment.ofArray(activations.values());
        this.xd = MemorySegment.ofArray(activations.scales());
      } else {
        int blocks = cols / 32;
        int tiles = Math.ceilDiv(numTokens, TILE_TOKENS);
        activations.ensure(numTokens * cols);
        if (packed.length < tiles * blocks * 512) {
          packed = new byte[tiles * blocks * 512];
          tokenScales = new float[tiles * blocks * TILE_TOKENS];
        }
        this.xd = MemorySegment.ofArray(tokenScales);
        this.xq = MemorySegment.ofArray(packed);
        this.table = blockTable(w);
        prepareTiles(x, xOffset);
      }
      int threads = vector.numThreads();
      this.parts = w.rows() < PARALLEL_ROWS ? 1 : threads * PARTS_PER_THREAD;
      // whole groups of the several-token kernel's rows (a part's short last group repeats rows)
      int group = numTokens > 1 ? form.rowsPerGroup : 16;
      this.rowsPerPart = Math.ceilDiv(Math.ceilDiv(w.rows(), parts), group) * group;
      nextPart.set(0); // volatile write publishes the fields above to the workers
    }

    private void prepareTiles(float[] x, int xOffset) {
      this.source = x;
      this.sourceOffset = xOffset;
      this.tokenTiles = Math.ceilDiv(numTokens, TILE_TOKENS);
      nextTile.set(0);
    }

    /** Whether the call's activations are still to be prepared: {@link #runShare} does that first. */
    boolean preparingTokens() {
      return tokenTiles > 0;
    }

    /** Ends the preparing: {@link #runShare} multiplies rows from now on. */
    void startRows() {
      tokenTiles = 0;
      source = null;
      nextPart.set(0); // volatile write publishes it to the workers
    }

    /**
     * Tile {@code tile}'s tokens rounded to BF16, or quantized to Q8_0, their block scales put in
     * the tile's place (zero for its padding tokens) and their int8 values packed.
     */
    private void prepareTile(int tile) {
      int cols = w.cols();
      int first = tile * TILE_TOKENS;
      int count = Math.min(TILE_TOKENS, numTokens - first);
      if (form == SeveralTokens.BF16) {
        library.bf16Round(MemorySegment.ofArray(source).asSlice((long) (sourceOffset + first * cols) * Float.BYTES),
            (long) count * cols, x.asSlice((long) first * cols * Short.BYTES));
        return;
      }
      int blocks = cols / 32;
      activations.quantize(source, sourceOffset + first * cols, count * cols, first * cols);
      float[] d = activations.scales();
      int tileScales = tile * blocks * TILE_TOKENS;
      Arrays.fill(tokenScales, tileScales, tileScales + blocks * TILE_TOKENS, 0f);
      for (int t = 0; t < count; t++) {
        for (int b = 0; b < blocks; b++) {
          tokenScales[tileScales + b * TILE_TOKENS + t] = d[(first + t) * blocks + b];
        }
      }
      library.packTokens(MemorySegment.ofArray(activations.values()).asSlice((long) first * cols), count, cols,
          xq.asSlice((long) tile * blocks * 512));
    }

    @Override
    public void runShare() {
      if (tokenTiles > 0) {
        for (int tile = nextTile.getAndIncrement(); tile < tokenTiles; tile = nextTile.getAndIncrement()) {
          prepareTile(tile);
        }
        return;
      }
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
      if (form == SeveralTokens.BF16) {
        library.bf16MatmulDp(weights, w.rowStrideBytes(), rows, w.cols(), x, numTokens,
            MemorySegment.ofArray(out).asSlice((long) (outOffset + from) * Float.BYTES), w.rows());
        return;
      }
      boolean bf16 = w.dtype() == DType.BF16;
      if (numTokens > 1 && form == SeveralTokens.HALF) {
        library.halfMatmul(bf16, weights, w.rowStrideBytes(), rows, w.cols(), x, numTokens,
            MemorySegment.ofArray(out).asSlice((long) (outOffset + from) * Float.BYTES), w.rows());
        return;
      }
      if (numTokens > 1) {
        int blocks = w.cols() / 32;
        boolean amx = form == SeveralTokens.AMX;
        library.blockMatmul(w.dtype() == DType.Q4_0, amx, weights, w.rowStrideBytes(), rows, blocks,
            table.scales().asSlice((long) from * blocks * Float.BYTES),
            amx ? MemorySegment.NULL : table.offsets().asSlice((long) from * blocks * Integer.BYTES), xq, xd,
            numTokens, MemorySegment.ofArray(out).asSlice((long) (outOffset + from) * Float.BYTES), w.rows());
        return;
      }
      MemorySegment results = MemorySegment.ofArray(out)
          .asSlice((long) (outOffset + from) * Float.BYTES, (long) rows * Float.BYTES);
      if (form != SeveralTokens.HALF) {
        library.blockMatvec(w.dtype() == DType.Q4_0, vnni, weights, w.rowStrideBytes(), rows, w.cols() / 32, xq, xd,
            results);
      } else {
        library.halfMatvec(bf16, weights, w.rowStrideBytes(), rows, w.cols(), x, results);
      }
    }

    void clear() {
      w = null;
      source = null;
      tokenTiles = 0;
      x = null;
      xq = null;
      xd = null;
      table = null;
      out = null;
    }
  }
}
