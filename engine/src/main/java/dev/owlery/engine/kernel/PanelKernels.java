package dev.owlery.engine.kernel;

import dev.owlery.engine.tensor.DType;
import dev.owlery.engine.tensor.Matrix;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The many-token (prefill, vision tower) matmul kernels of {@link VectorMatmul}, as outer products:
 * the activations are transposed once per call into {@code xT[k][t]} (tokens padded to whole
 * vectors, in blocks of one tile's tokens: {@link #transposeBlocks}), a block of weight rows is
 * widened once into floats, and a register tile of
 * {@value #ROWS} rows by four token vectors (24 accumulators on 32 registers) adds, for every column
 * k, one broadcast weight times four loaded activation vectors per row: 24 FMAs for 4 vector loads
 * and 6 broadcasts, and no reduction across lanes. The accumulators stay in registers over all
 * columns; each tile writes its outputs once. Calls of fewer than 4L tokens (batched decode), and
 * the token vectors after a call's last whole block, run tiles of {@value #NARROW_ROWS} rows by one
 * token vector instead, and a last vector of at most {@value #DOT_TOKENS} real tokens dot products;
 * the former, whose widened rows serve one token tile only, widen them a column chunk at a time into
 * L1 ({@link #NARROW_CHUNK}) rather than a whole block.
 */
final class PanelKernels {

  /** Weight rows per register tile of {@link #TOKEN_VECTORS} token vectors. */
  static final int ROWS = 6;
  /** Weight rows per register tile of one token vector, the tile of calls with fewer than 4L tokens. */
  static final int NARROW_ROWS = 12;
  /**
   * Most weight rows widened together: their row tiles share each token tile of xT while it is in
   * L2 (the block's rows of one column chunk, 96 x 1,024 floats, are 384 KiB, a token tile's chunk
   * 256 KiB). Each token tile's chunk comes from beyond L2 once per block, so the block is as tall
   * as L2 allows: one thread, F16, all five variants alternating in one JVM, 24 -> 48 -> 72 -> 96 ->
   * 144 rows: 1,024 x 4,096 at 1,025 tokens (the ViT's fc2) 115 -> 129 -> 134 -> 141 -> 142
   * GFLOP/s, 4,096 x 1,024 (fc1) 148 -> 160 -> 162 -> 160 -> 158, 5,632 x 2,048 at 128 tokens 153
   * -> 158 -> 160 -> 163 -> 163.
   */
  static final int BLOCK_ROWS = 96;
  /**
   * Columns of a group of {@value #NARROW_ROWS} rows widened at a time in calls of fewer than 4L
   * tokens: 12 x 512 floats (24 KiB) stay in L1 while every token vector's tile reads them. A 16-token
   * call (batched decode of 16 sequences), 65,536 x 2,048 F16, one JVM per variant, taking turns: 1
   * thread 82-85 ms against 96-102 for the whole 96-row block widened first, 2 threads 46-47 against
   * 55-57; 256 columns 82 and 49-50, 1,024 82 and 47.
   */
  static final int NARROW_CHUNK = 512;
  /** Rows a thread's share of a call is a multiple of (the last share excepted): two narrow tiles. */
  static final int SHARE_GRANULE = 2 * NARROW_ROWS;
  private static final VectorSpecies<Float> F = VectorMatmul.F;
  private static final int L = F.length();
  /**
   * Most columns the 6x4 tiles walk before their partial sums are added to the outputs: a token
   * tile of xT is then at most 1,024 x 64 floats (256 KiB) and stays in L2 for the block's other row
   * tiles (a 4,096-column call's 1 MiB tile did not; measured with blocks of 24 rows). One thread,
   * F16, alternating in one JVM: 1,024 x 4,096 at 1,025 tokens (the ViT's fc2) 121 -> 126-130
   * GFLOP/s, 2,048 x 5,632 at 512 tokens 135 -> 152, 4,096 x 11,008 at 512 (LLaMA-2-7B's down_proj)
   * 103 -> 133; no change at 1,024 and 2,048 columns.
   */
  static final int K_CHUNK = 1024;
  /** Token vectors per register tile. */
  private static final int TOKEN_VECTORS = 4;
  /** Tokens per block of the transposed activations: those of one register tile. */
  private static final int BLOCK_TOKENS = TOKEN_VECTORS * L;
  /** Whether a token vector is transposed in 16 x 16 tiles in registers (L = 16: AVX-512). */
  private static final boolean TILES = L == 16;
  private static final FloatVector LOW_8 = tileLanes(8, false);
  private static final FloatVector HIGH_8 = tileLanes(8, true);
  private static final FloatVector LOW_4 = tileLanes(4, false);
  private static final FloatVector HIGH_4 = tileLanes(4, true);
  private static final FloatVector LOW_2 = tileLanes(2, false);
  private static final FloatVector HIGH_2 = tileLanes(2, true);
  private static final FloatVector LOW_1 = tileLanes(1, false);
  private static final FloatVector HIGH_1 = tileLanes(1, true);
  /** Fewest tokens worth a transpose: one whole token vector. */
  static final int MIN_TOKENS = L;
  /** Widened weight rows of the group in progress and the tile's outputs, per thread; reused. */
  private static final ThreadLocal<float[]> WIDENED = ThreadLocal.withInitial(() -> new float[0]);
  private static final ThreadLocal<float[]> TILE = ThreadLocal.withInitial(() -> new float[ROWS * TOKEN_VECTORS * L]);
  /** A token's activations gathered from xT for {@link TileKernels#dot}; reused. */
  private static final ThreadLocal<float[]> X_ROW = ThreadLocal.withInitial(() -> new float[0]);
  /** Real tokens in the last token vector up to which it runs as dot products rather than 12x1 tiles. */
  private static final int DOT_TOKENS = 4;
  /** A group of narrow tiles' rows widened one column chunk at a time, per thread; reused. */
  private static final ThreadLocal<float[]> NARROW_WIDENED =
      ThreadLocal.withInitial(() -> new float[NARROW_ROWS * narrowStride()]);
  /** The outputs of the block of rows in progress, token after token; reused. */
  private static final ThreadLocal<float[]> BLOCK_OUT = ThreadLocal.withInitial(() -> new float[0]);

  private PanelKernels() {}

  /** Tokens rounded up to whole vectors: the row length of a transposed activation block. */
  static int paddedTokens(int numTokens) {
    return Math.ceilDiv(numTokens, L) * L;
  }

  /** Token blocks of the transposed activations: {@link #transposeBlocks} splits the work by them. */
  static int tokenBlocks(int numTokens) {
    return Math.ceilDiv(paddedTokens(numTokens), BLOCK_TOKENS);
  }

  /** The first token of a token block of the transposed activations. */
  static int firstToken(int tokenBlock) {
    return tokenBlock * BLOCK_TOKENS;
  }

  /**
   * Activations transposed in token blocks: the tokens, padded to {@code paddedTokens}, are cut
   * into blocks of {@value #TOKEN_VECTORS} vectors (the last block narrower), and each block is
   * stored whole, column after column: {@code xT[blockStart * cols + k * width + (t - blockStart)]
   * = x[xOffset + t * cols + k'] * scale} for the block {@code [blockStart, blockStart + width)}
   * holding t, the padding tokens zero, where k' is k in the pair order of 16-bit weights from
   * column {@code pairsFrom} on ({@link VectorMatmul#permuteForPairs}; {@code cols} for none): the
   * activations permuted, scaled and transposed in one pass. A register tile thus reads its token
   * block front to back (with one row of all tokens per column, a 1,025-token call read 256 bytes
   * of every 4 KiB page per column: measured 31% of the vision tower's samples waiting on those
   * loads). {@code xT} must hold {@code cols * paddedTokens(numTokens)} floats. Writes the token
   * blocks {@code [fromBlock, toBlock)} of {@link #tokenBlocks}, so that threads can share the work.
   */
  static void transposeBlocks(float[] x, int xOffset, int cols, int numTokens, int pairsFrom, float scale, float[] xT,
      int fromBlock, int toBlock) {
    int tp = paddedTokens(numTokens);
    int pairedEnd = pairsFrom + (cols - pairsFrom) / (2 * L) * (2 * L);
    for (int block = fromBlock; block < toBlock; block++) {
      int blockStart = block * BLOCK_TOKENS;
      int width = Math.min(BLOCK_TOKENS, tp - blockStart);
      int tEnd = Math.min(numTokens, blockStart + width);
      // column k of token t goes to base + k * width + t
      int base = blockStart * cols - blockStart;
      int t = blockStart;
      if (TILES) {
        for (; t + L <= tEnd; t += L) {
          transposeTokenVector(x, xOffset + t * cols, cols, pairsFrom, pairedEnd, scale, xT, base + t, width);
        }
      }
      // four tokens at a time: four rows read front to back, four adjacent floats written per column
      // (one token per column wrote one float per 256 bytes: 2.1-2.3 ns per element, this 0.5-0.7)
      for (; t + 4 <= tEnd; t += 4) {
        int s0 = xOffset + t * cols;
        int s1 = s0 + cols;
        int s2 = s1 + cols;
        int s3 = s2 + cols;
        for (int k = 0; k < pairsFrom; k++) {
          int d = base + k * width + t;
          xT[d] = x[s0 + k] * scale;
          xT[d + 1] = x[s1 + k] * scale;
          xT[d + 2] = x[s2 + k] * scale;
          xT[d + 3] = x[s3 + k] * scale;
        }
        for (int pair = pairsFrom; pair < pairedEnd; pair += 2 * L) {
          for (int i = 0; i < L; i++) {
            int even = pair + 2 * i;
            int odd = even + 1;
            int d = base + (pair + i) * width + t;
            xT[d] = x[s0 + even] * scale;
            xT[d + 1] = x[s1 + even] * scale;
            xT[d + 2] = x[s2 + even] * scale;
            xT[d + 3] = x[s3 + even] * scale;
            d += L * width;
            xT[d] = x[s0 + odd] * scale;
            xT[d + 1] = x[s1 + odd] * scale;
            xT[d + 2] = x[s2 + odd] * scale;
            xT[d + 3] = x[s3 + odd] * scale;
          }
        }
        for (int k = pairedEnd; k < cols; k++) {
          int d = base + k * width + t;
          xT[d] = x[s0 + k] * scale;
          xT[d + 1] = x[s1 + k] * scale;
          xT[d + 2] = x[s2 + k] * scale;
          xT[d + 3] = x[s3 + k] * scale;
        }
      }
      for (; t < blockStart + width; t++) {
        int source = xOffset + t * cols;
        for (int k = 0; k < cols; k++) {
          xT[base + k * width + t] = t < tEnd ? x[source + VectorMatmul.pairedColumn(k, pairsFrom, pairedEnd)] * scale : 0f;
        }
      }
    }
  }

  /**
   * One token vector (L = 16 tokens from {@code source}, rows {@code cols} apart) of
   * {@link #transposeBlocks}: whole 16 x 16 tiles transposed in registers, each tile's column k
   * stored as one vector at {@code d + k' * width}, k' the column's place in the pair order; the
   * columns no whole tile covers element by element. Against four tokens at a time element by
   * element, one thread, one JVM: 1,025 x 1,024 0.49 -> 0.24 ns per element, 1,024 x 4,096 0.86 ->
   * 0.38, 128 x 2,048 0.49 -> 0.23.
   */
  private static void transposeTokenVector(float[] x, int source, int cols, int pairsFrom, int pairedEnd, float scale,
      float[] xT, int d, int width) {
    int k = 0;
    for (; k + L <= pairsFrom; k += L) {
      transposeTile(x, source + k, cols, scale, xT, d + k * width, d + (k + 1) * width, 2 * width);
    }
    transposeColumns(x, source, cols, k, pairsFrom, scale, xT, d, width);
    for (int pair = pairsFrom; pair < pairedEnd; pair += 2 * L) {
      // source columns pair + 2i go to pair + i, pair + 2i + 1 to pair + L + i
      int even = d + pair * width;
      int odd = d + (pair + L) * width;
      transposeTile(x, source + pair, cols, scale, xT, even, odd, width);
      transposeTile(x, source + pair + L, cols, scale, xT, even + L / 2 * width, odd + L / 2 * width, width);
    }
    transposeColumns(x, source, cols, pairedEnd, cols, scale, xT, d, width);
  }

  /** Columns {@code [from, to)} of one token vector from {@code source}, element by element, in natural order. */
  private static void transposeColumns(float[] x, int source, int cols, int from, int to, float scale, float[] xT,
      int d, int width) {
    for (int k = from; k < to; k++) {
      for (int i = 0; i < L; i++) {
        xT[d + k * width + i] = x[source + i * cols + k] * scale;
      }
    }
  }

  /**
   * Transposes a 16 x 16 tile: rows {@code source + i * cols} (i a token, 16 columns each) become 16
   * vectors of one column's 16 tokens, times {@code scale}; column j's vector is stored at {@code
   * even + j / 2 * step} for even j, {@code odd + j / 2 * step} for odd j. Four stages, each swapping
   * the off-diagonal blocks of every 2b x 2b block (b = 8, 4, 2, 1) with two-vector lane selections
   * (one {@code vpermi2ps} each, as C2 compiles them on AVX-512). Written out: C2 keeps the sixteen
   * vectors in registers only within one method and without arrays.
   */
  private static void transposeTile(float[] x, int source, int cols, float scale, float[] xT, int even, int odd,
      int step) {
    FloatVector r0 = FloatVector.fromArray(F, x, source);
    FloatVector r1 = FloatVector.fromArray(F, x, source + cols);
    FloatVector r2 = FloatVector.fromArray(F, x, source + 2 * cols);
    FloatVector r3 = FloatVector.fromArray(F, x, source + 3 * cols);
    FloatVector r4 = FloatVector.fromArray(F, x, source + 4 * cols);
    FloatVector r5 = FloatVector.fromArray(F, x, source + 5 * cols);
    FloatVector r6 = FloatVector.fromArray(F, x, source + 6 * cols);
    FloatVector r7 = FloatVector.fromArray(F, x, source + 7 * cols);
    FloatVector r8 = FloatVector.fromArray(F, x, source + 8 * cols);
    FloatVector r9 = FloatVector.fromArray(F, x, source + 9 * cols);
    FloatVector r10 = FloatVector.fromArray(F, x, source + 10 * cols);
    FloatVector r11 = FloatVector.fromArray(F, x, source + 11 * cols);
    FloatVector r12 = FloatVector.fromArray(F, x, source + 12 * cols);
    FloatVector r13 = FloatVector.fromArray(F, x, source + 13 * cols);
    FloatVector r14 = FloatVector.fromArray(F, x, source + 14 * cols);
    FloatVector r15 = FloatVector.fromArray(F, x, source + 15 * cols);
    FloatVector t;
    // b = 8: rows i and i + 8
    t = LOW_8.selectFrom(r0, r8); r8 = HIGH_8.selectFrom(r0, r8); r0 = t;
    t = LOW_8.selectFrom(r1, r9); r9 = HIGH_8.selectFrom(r1, r9); r1 = t;
    t = LOW_8.selectFrom(r2, r10); r10 = HIGH_8.selectFrom(r2, r10); r2 = t;
    t = LOW_8.selectFrom(r3, r11); r11 = HIGH_8.selectFrom(r3, r11); r3 = t;
    t = LOW_8.selectFrom(r4, r12); r12 = HIGH_8.selectFrom(r4, r12); r4 = t;
    t = LOW_8.selectFrom(r5, r13); r13 = HIGH_8.selectFrom(r5, r13); r5 = t;
    t = LOW_8.selectFrom(r6, r14); r14 = HIGH_8.selectFrom(r6, r14); r6 = t;
    t = LOW_8.selectFrom(r7, r15); r15 = HIGH_8.selectFrom(r7, r15); r7 = t;
    // b = 4
    t = LOW_4.selectFrom(r0, r4); r4 = HIGH_4.selectFrom(r0, r4); r0 = t;
    t = LOW_4.selectFrom(r1, r5); r5 = HIGH_4.selectFrom(r1, r5); r1 = t;
    t = LOW_4.selectFrom(r2, r6); r6 = HIGH_4.selectFrom(r2, r6); r2 = t;
    t = LOW_4.selectFrom(r3, r7); r7 = HIGH_4.selectFrom(r3, r7); r3 = t;
    t = LOW_4.selectFrom(r8, r12); r12 = HIGH_4.selectFrom(r8, r12); r8 = t;
    t = LOW_4.selectFrom(r9, r13); r13 = HIGH_4.selectFrom(r9, r13); r9 = t;
    t = LOW_4.selectFrom(r10, r14); r14 = HIGH_4.selectFrom(r10, r14); r10 = t;
    t = LOW_4.selectFrom(r11, r15); r15 = HIGH_4.selectFrom(r11, r15); r11 = t;
    // b = 2
    t = LOW_2.selectFrom(r0, r2); r2 = HIGH_2.selectFrom(r0, r2); r0 = t;
    t = LOW_2.selectFrom(r1, r3); r3 = HIGH_2.selectFrom(r1, r3); r1 = t;
    t = LOW_2.selectFrom(r4, r6); r6 = HIGH_2.selectFrom(r4, r6); r4 = t;
    t = LOW_2.selectFrom(r5, r7); r7 = HIGH_2.selectFrom(r5, r7); r5 = t;
    t = LOW_2.selectFrom(r8, r10); r10 = HIGH_2.selectFrom(r8, r10); r8 = t;
    t = LOW_2.selectFrom(r9, r11); r11 = HIGH_2.selectFrom(r9, r11); r9 = t;
    t = LOW_2.selectFrom(r12, r14); r14 = HIGH_2.selectFrom(r12, r14); r12 = t;
    t = LOW_2.selectFrom(r13, r15); r15 = HIGH_2.selectFrom(r13, r15); r13 = t;
    // b = 1
    t = LOW_1.selectFrom(r0, r1); r1 = HIGH_1.selectFrom(r0, r1); r0 = t;
    t = LOW_1.selectFrom(r2, r3); r3 = HIGH_1.selectFrom(r2, r3); r2 = t;
    t = LOW_1.selectFrom(r4, r5); r5 = HIGH_1.selectFrom(r4, r5); r4 = t;
    t = LOW_1.selectFrom(r6, r7); r7 = HIGH_1.selectFrom(r6, r7); r6 = t;
    t = LOW_1.selectFrom(r8, r9); r9 = HIGH_1.selectFrom(r8, r9); r8 = t;
    t = LOW_1.selectFrom(r10, r11); r11 = HIGH_1.selectFrom(r10, r11); r10 = t;
    t = LOW_1.selectFrom(r12, r13); r13 = HIGH_1.selectFrom(r12, r13); r12 = t;
    t = LOW_1.selectFrom(r14, r15); r15 = HIGH_1.selectFrom(r14, r15); r14 = t;
    r0.mul(scale).intoArray(xT, even);
    r1.mul(scale).intoArray(xT, odd);
    r2.mul(scale).intoArray(xT, even + step);
    r3.mul(scale).intoArray(xT, odd + step);
    r4.mul(scale).intoArray(xT, even + 2 * step);
    r5.mul(scale).intoArray(xT, odd + 2 * step);
    r6.mul(scale).intoArray(xT, even + 3 * step);
    r7.mul(scale).intoArray(xT, odd + 3 * step);
    r8.mul(scale).intoArray(xT, even + 4 * step);
    r9.mul(scale).intoArray(xT, odd + 4 * step);
    r10.mul(scale).intoArray(xT, even + 5 * step);
    r11.mul(scale).intoArray(xT, odd + 5 * step);
    r12.mul(scale).intoArray(xT, even + 6 * step);
    r13.mul(scale).intoArray(xT, odd + 6 * step);
    r14.mul(scale).intoArray(xT, even + 7 * step);
    r15.mul(scale).intoArray(xT, odd + 7 * step);
  }

  /**
   * The lane selections of a stage of {@link #transposeTile} for rows i (LOW) and i + b (HIGH):
   * lane j of the new row i is row i's lane j where bit b of j is clear, else row i + b's lane j -
   * b; of the new row i + b, row i's lane j + b where the bit is clear, else row i + b's lane j.
   * Lanes 16 and up of an index select from the second vector. Only used where L = 16.
   */
  private static FloatVector tileLanes(int b, boolean high) {
    float[] index = new float[L];
    for (int j = 0; j < L; j++) {
      boolean upper = (j & b) != 0;
      index[j] = high ? (upper ? L + j : j + b) : (upper ? L + j - b : j);
    }
    return FloatVector.fromArray(F, index, 0);
  }

  /**
   * {@code out[t, r] = w[r, :] . x[t, :] * outScale} for rows {@code [from, to)} and every token,
   * from the transposed activations (in the weights' widened column order, see
   * {@link VectorMatmul#rows}).
   */
  static void rows(Matrix w, float[] xT, int numTokens, float[] out, int outOffset, int from, int to, int head,
      float outScale) {
    int tp = paddedTokens(numTokens);
    if (tp < BLOCK_TOKENS && (w.dtype() == DType.F16 || w.dtype() == DType.BF16)) {
      narrowRows(w, xT, numTokens, out, outOffset, from, to, head, outScale);
      return;
    }
    int cols = w.cols();
    int outStride = w.rows();
    int numChunks = Math.ceilDiv(cols, K_CHUNK);
    int stride = TileKernels.widenedStride(cols);
    float[] widened = WIDENED.get();
    if (widened.length < BLOCK_ROWS * stride) {
      widened = new float[BLOCK_ROWS * stride];
      WIDENED.set(widened);
    }
    float[] tile = TILE.get();
    float[] blockOut = BLOCK_OUT.get();
    if (blockOut.length < BLOCK_ROWS * numTokens) {
      blockOut = new float[BLOCK_ROWS * numTokens];
      BLOCK_OUT.set(blockOut);
    }
    for (int r = from; r < to; r += BLOCK_ROWS) {
      int blockRows = Math.min(BLOCK_ROWS, to - r);
      // padded for the narrow tiles (a multiple of the 6x4 tiles' rows)
      int paddedRows = Math.ceilDiv(blockRows, NARROW_ROWS) * NARROW_ROWS;
      for (int i = 0; i < blockRows; i += TileKernels.WIDEN_ROWS) {
        TileKernels.widen(w, r + i, Math.min(TileKernels.WIDEN_ROWS, blockRows - i), head, 0, cols, widened, i * stride,
            stride);
      }
      java.util.Arrays.fill(widened, blockRows * stride, paddedRows * stride, 0f);
      // column chunks outer (the block's rows of one chunk stay in L2 over all the token tiles), each
      // chunk's partial sums added into the block's outputs; then token tiles, the block's row tiles
      // inner: a token tile's chunk of xT (at most K_CHUNK x 4L floats) is read from beyond L2 once
      // per block, then from L2 for the block's other row tiles
      int wholeTokens = tp / BLOCK_TOKENS * BLOCK_TOKENS;
      for (int c = 0; c < numChunks; c++) {
        int k0 = (int) ((long) cols * c / numChunks);
        int k1 = (int) ((long) cols * (c + 1) / numChunks);
        for (int t0 = 0; t0 < wholeTokens; t0 += BLOCK_TOKENS) {
          for (int i = 0; i < blockRows; i += ROWS) {
            tile6x4(widened, i * stride + k0, stride, k1 - k0, xT, t0 * cols + k0 * BLOCK_TOKENS, BLOCK_TOKENS, tile);
            scatter(tile, BLOCK_TOKENS, Math.min(ROWS, blockRows - i), t0, Math.min(numTokens, t0 + BLOCK_TOKENS),
                blockOut, i, outScale, c > 0);
          }
        }
      }
      int t0 = wholeTokens;
      // the last, narrower token block: width tp - t0, its vectors side by side, in the 12x1 tiles of
      // batched decode (a 6x1 tile of its own measured no faster) or, for a few tokens, dot products
      int blockStart = t0;
      int width = tp - blockStart;
      for (; t0 < tp; t0 += L) {
        int base = blockStart * cols + t0 - blockStart;
        int vectorTokens = Math.min(numTokens, t0 + L) - t0;
        if (vectorTokens <= DOT_TOKENS) {
          // a vector of a few real tokens (a ViT call's 1,025th): a 12x1 tile would multiply all L
          // lanes, dot products only the real ones
          float[] xRow = X_ROW.get();
          if (xRow.length < cols) {
            xRow = new float[cols];
            X_ROW.set(xRow);
          }
          for (int t = t0; t < t0 + vectorTokens; t++) {
            for (int k = 0; k < cols; k++) {
              xRow[k] = xT[base + k * width + t - t0];
            }
            for (int i = 0; i < blockRows; i++) {
              blockOut[t * BLOCK_ROWS + i] = TileKernels.dot(widened, i * stride, xRow, 0, cols) * outScale;
            }
          }
          continue;
        }
        for (int i = 0; i < blockRows; i += NARROW_ROWS) {
          tile12x1(widened, i * stride, stride, cols, xT, base, width, tile);
          scatter(tile, L, Math.min(NARROW_ROWS, blockRows - i), t0, Math.min(numTokens, t0 + L), blockOut, i,
              outScale, false);
        }
      }
      // each token's outputs of the block are one run of out: written once per block, not per tile
      // (a tile's outputs, a few floats per token, hit a new cache line and page per token)
      for (int t = 0; t < numTokens; t++) {
        System.arraycopy(blockOut, t * BLOCK_ROWS, out, outOffset + t * outStride + r, blockRows);
      }
    }
  }

  /**
   * {@link #rows} for 16-bit weights in calls of fewer than 4L tokens (batched decode), where no
   * token tile reuses a widened block: each group of {@value #NARROW_ROWS} rows is widened {@value #NARROW_CHUNK}
   * columns at a time, the rows side by side, into a buffer that stays in L1, and every token
   * vector's 12x1 tile (or, for a last vector of at most {@value #DOT_TOKENS} real tokens, dot
   * products) runs over that chunk before the next; the chunks' partial sums add up in the block's
   * outputs. xT is one block of {@code paddedTokens(numTokens)} tokens. Q8_0 weights this way ran
   * 16-token calls at 0.77x (16,384 x 2,048, one thread, against the whole block widened first) and
   * keep the block.
   */
  private static void narrowRows(Matrix w, float[] xT, int numTokens, float[] out, int outOffset, int from, int to,
      int head, float outScale) {
    int cols = w.cols();
    int outStride = w.rows();
    int tp = paddedTokens(numTokens);
    int chunkStride = narrowStride();
    float[] chunk = NARROW_WIDENED.get();
    float[] tile = TILE.get();
    float[] blockOut = BLOCK_OUT.get();
    if (blockOut.length < BLOCK_ROWS * numTokens) {
      blockOut = new float[BLOCK_ROWS * numTokens];
      BLOCK_OUT.set(blockOut);
    }
    // a last vector of a few real tokens: its tokens' activations gathered once for the dot products
    int lastVector = tp - L;
    int dotTokens = numTokens - lastVector <= DOT_TOKENS ? numTokens - lastVector : 0;
    int tiledEnd = dotTokens > 0 ? lastVector : tp;
    float[] xRows = X_ROW.get();
    if (xRows.length < dotTokens * cols) {
      xRows = new float[dotTokens * cols];
      X_ROW.set(xRows);
    }
    for (int d = 0; d < dotTokens; d++) {
      for (int k = 0; k < cols; k++) {
        xRows[d * cols + k] = xT[lastVector + k * tp + d];
      }
    }
    for (int r = from; r < to; r += BLOCK_ROWS) {
      int blockRows = Math.min(BLOCK_ROWS, to - r);
      for (int i = 0; i < blockRows; i += NARROW_ROWS) {
        int n = Math.min(NARROW_ROWS, blockRows - i);
        // chunks start at 0, then at head plus multiples of NARROW_CHUNK: whole pair and Q8_0/Q4_0 blocks
        for (int k0 = 0, k1; k0 < cols; k0 = k1) {
          k1 = Math.min(cols, Math.max(k0, head) + NARROW_CHUNK);
          TileKernels.widen(w, r + i, n, head, k0, k1, chunk, 0, chunkStride);
          boolean add = k0 > 0;
          for (int t0 = 0; t0 < tiledEnd; t0 += L) {
            // the rows of the group past n hold what an earlier group left there: their sums are not read
            tile12x1(chunk, 0, chunkStride, k1 - k0, xT, t0 + k0 * tp, tp, tile);
            scatter(tile, L, n, t0, Math.min(numTokens, t0 + L), blockOut, i, outScale, add);
          }
          for (int d = 0; d < dotTokens; d++) {
            int o = (lastVector + d) * BLOCK_ROWS + i;
            for (int j = 0; j < n; j++) {
              float v = TileKernels.dot(chunk, j * chunkStride, xRows, d * cols + k0, k1 - k0) * outScale;
              blockOut[o + j] = add ? blockOut[o + j] + v : v;
            }
          }
        }
      }
      for (int t = 0; t < numTokens; t++) {
        System.arraycopy(blockOut, t * BLOCK_ROWS, out, outOffset + t * outStride + r, blockRows);
      }
    }
  }

  /**
   * Floats between the rows of a narrow group's widened chunk: the first chunk also holds the head
   * (under 2L columns).
   */
  private static int narrowStride() {
    return TileKernels.widenedStride(NARROW_CHUNK + 2 * L);
  }

  /**
   * Writes a tile's {@code rows x (tEnd - t0)} results, stored as rows of {@code tileWidth}, into
   * the block's outputs (token after token, {@value #BLOCK_ROWS} rows each) from row {@code i0}.
   */
  private static void scatter(float[] tile, int tileWidth, int rows, int t0, int tEnd, float[] blockOut, int i0,
      float outScale, boolean add) {
    for (int t = t0; t < tEnd; t++) {
      for (int i = 0; i < rows; i++) {
        float v = tile[i * tileWidth + t - t0] * outScale;
        blockOut[t * BLOCK_ROWS + i0 + i] = add ? blockOut[t * BLOCK_ROWS + i0 + i] + v : v;
      }
    }
  }

  // hot: prefill and vision, six widened weight rows by four token vectors; 24 accumulators.
  private static void tile6x4(float[] w, int w0, int rowStride, int cols, float[] xT, int base, int stride,
      float[] tile) {
    int w1 = w0 + rowStride;
    int w2 = w0 + 2 * rowStride;
    int w3 = w0 + 3 * rowStride;
    int w4 = w0 + 4 * rowStride;
    int w5 = w0 + 5 * rowStride;
    FloatVector a00 = FloatVector.zero(F);
    FloatVector a01 = FloatVector.zero(F);
    FloatVector a02 = FloatVector.zero(F);
    FloatVector a03 = FloatVector.zero(F);
    FloatVector a10 = FloatVector.zero(F);
    FloatVector a11 = FloatVector.zero(F);
    FloatVector a12 = FloatVector.zero(F);
    FloatVector a13 = FloatVector.zero(F);
    FloatVector a20 = FloatVector.zero(F);
    FloatVector a21 = FloatVector.zero(F);
    FloatVector a22 = FloatVector.zero(F);
    FloatVector a23 = FloatVector.zero(F);
    FloatVector a30 = FloatVector.zero(F);
    FloatVector a31 = FloatVector.zero(F);
    FloatVector a32 = FloatVector.zero(F);
    FloatVector a33 = FloatVector.zero(F);
    FloatVector a40 = FloatVector.zero(F);
    FloatVector a41 = FloatVector.zero(F);
    FloatVector a42 = FloatVector.zero(F);
    FloatVector a43 = FloatVector.zero(F);
    FloatVector a50 = FloatVector.zero(F);
    FloatVector a51 = FloatVector.zero(F);
    FloatVector a52 = FloatVector.zero(F);
    FloatVector a53 = FloatVector.zero(F);
    for (int k = 0; k < cols; k++) {
      int xi = base + k * stride;
      FloatVector x0 = FloatVector.fromArray(F, xT, xi);
      FloatVector x1 = FloatVector.fromArray(F, xT, xi + L);
      FloatVector x2 = FloatVector.fromArray(F, xT, xi + 2 * L);
      FloatVector x3 = FloatVector.fromArray(F, xT, xi + 3 * L);
      FloatVector b = FloatVector.broadcast(F, w[w0 + k]);
      a00 = x0.fma(b, a00);
      a01 = x1.fma(b, a01);
      a02 = x2.fma(b, a02);
      a03 = x3.fma(b, a03);
      b = FloatVector.broadcast(F, w[w1 + k]);
      a10 = x0.fma(b, a10);
      a11 = x1.fma(b, a11);
      a12 = x2.fma(b, a12);
      a13 = x3.fma(b, a13);
      b = FloatVector.broadcast(F, w[w2 + k]);
      a20 = x0.fma(b, a20);
      a21 = x1.fma(b, a21);
      a22 = x2.fma(b, a22);
      a23 = x3.fma(b, a23);
      b = FloatVector.broadcast(F, w[w3 + k]);
      a30 = x0.fma(b, a30);
      a31 = x1.fma(b, a31);
      a32 = x2.fma(b, a32);
      a33 = x3.fma(b, a33);
      b = FloatVector.broadcast(F, w[w4 + k]);
      a40 = x0.fma(b, a40);
      a41 = x1.fma(b, a41);
      a42 = x2.fma(b, a42);
      a43 = x3.fma(b, a43);
      b = FloatVector.broadcast(F, w[w5 + k]);
      a50 = x0.fma(b, a50);
      a51 = x1.fma(b, a51);
      a52 = x2.fma(b, a52);
      a53 = x3.fma(b, a53);
    }
    int s = TOKEN_VECTORS * L;
    a00.intoArray(tile, 0);
    a01.intoArray(tile, L);
    a02.intoArray(tile, 2 * L);
    a03.intoArray(tile, 3 * L);
    a10.intoArray(tile, s);
    a11.intoArray(tile, s + L);
    a12.intoArray(tile, s + 2 * L);
    a13.intoArray(tile, s + 3 * L);
    a20.intoArray(tile, 2 * s);
    a21.intoArray(tile, 2 * s + L);
    a22.intoArray(tile, 2 * s + 2 * L);
    a23.intoArray(tile, 2 * s + 3 * L);
    a30.intoArray(tile, 3 * s);
    a31.intoArray(tile, 3 * s + L);
    a32.intoArray(tile, 3 * s + 2 * L);
    a33.intoArray(tile, 3 * s + 3 * L);
    a40.intoArray(tile, 4 * s);
    a41.intoArray(tile, 4 * s + L);
    a42.intoArray(tile, 4 * s + 2 * L);
    a43.intoArray(tile, 4 * s + 3 * L);
    a50.intoArray(tile, 5 * s);
    a51.intoArray(tile, 5 * s + L);
    a52.intoArray(tile, 5 * s + 2 * L);
    a53.intoArray(tile, 5 * s + 3 * L);
  }

  // 16 to 63 tokens (batched decode) and the token vectors left after the 6x4 tiles: twelve rows by
  // one token vector; 12 FMAs per vector load and 12 broadcasts.
  private static void tile12x1(float[] w, int w0, int rowStride, int cols, float[] xT, int base, int stride,
      float[] tile) {
    FloatVector a0 = FloatVector.zero(F);
    FloatVector a1 = FloatVector.zero(F);
    FloatVector a2 = FloatVector.zero(F);
    FloatVector a3 = FloatVector.zero(F);
    FloatVector a4 = FloatVector.zero(F);
    FloatVector a5 = FloatVector.zero(F);
    FloatVector a6 = FloatVector.zero(F);
    FloatVector a7 = FloatVector.zero(F);
    FloatVector a8 = FloatVector.zero(F);
    FloatVector a9 = FloatVector.zero(F);
    FloatVector a10 = FloatVector.zero(F);
    FloatVector a11 = FloatVector.zero(F);
    for (int k = 0; k < cols; k++) {
      FloatVector x0 = FloatVector.fromArray(F, xT, base + k * stride);
      a0 = x0.fma(FloatVector.broadcast(F, w[w0 + k]), a0);
      a1 = x0.fma(FloatVector.broadcast(F, w[w0 + rowStride + k]), a1);
      a2 = x0.fma(FloatVector.broadcast(F, w[w0 + 2 * rowStride + k]), a2);
      a3 = x0.fma(FloatVector.broadcast(F, w[w0 + 3 * rowStride + k]), a3);
      a4 = x0.fma(FloatVector.broadcast(F, w[w0 + 4 * rowStride + k]), a4);
      a5 = x0.fma(FloatVector.broadcast(F, w[w0 + 5 * rowStride + k]), a5);
      a6 = x0.fma(FloatVector.broadcast(F, w[w0 + 6 * rowStride + k]), a6);
      a7 = x0.fma(FloatVector.broadcast(F, w[w0 + 7 * rowStride + k]), a7);
      a8 = x0.fma(FloatVector.broadcast(F, w[w0 + 8 * rowStride + k]), a8);
      a9 = x0.fma(FloatVector.broadcast(F, w[w0 + 9 * rowStride + k]), a9);
      a10 = x0.fma(FloatVector.broadcast(F, w[w0 + 10 * rowStride + k]), a10);
      a11 = x0.fma(FloatVector.broadcast(F, w[w0 + 11 * rowStride + k]), a11);
    }
    a0.intoArray(tile, 0);
    a1.intoArray(tile, L);
    a2.intoArray(tile, 2 * L);
    a3.intoArray(tile, 3 * L);
    a4.intoArray(tile, 4 * L);
    a5.intoArray(tile, 5 * L);
    a6.intoArray(tile, 6 * L);
    a7.intoArray(tile, 7 * L);
    a8.intoArray(tile, 8 * L);
    a9.intoArray(tile, 9 * L);
    a10.intoArray(tile, 10 * L);
    a11.intoArray(tile, 11 * L);
  }
}
