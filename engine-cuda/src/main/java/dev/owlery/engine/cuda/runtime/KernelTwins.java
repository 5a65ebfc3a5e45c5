package dev.owlery.engine.cuda.runtime;

import dev.owlery.engine.cuda.ptx.PtxKernel;
import dev.owlery.engine.cuda.ptx.PtxKernels;
import dev.owlery.engine.kernel.AttentionMask;
import dev.owlery.engine.kernel.AttentionShape;
import dev.owlery.engine.kernel.KeyValueRows;
import dev.owlery.engine.kernel.ScalarKernels;
import dev.owlery.engine.tensor.DType;
import dev.owlery.engine.tensor.Matrix;
import dev.owlery.engine.tensor.WeightFormat;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.function.Function;

/**
 * The Java twin of every kernel of {@link PtxKernels}: the same arguments, the same buffer layouts,
 * the same coverage of the grid (a per-row kernel handles the rows its blocks cover, a GEMV the
 * {@code gridX * blockSize / 32} rows its warps cover, a grid-stride kernel everything), the
 * documented results computed with the engine's reference code ({@link ScalarKernels}) wherever it
 * applies. Where a kernel rounds (the KV cache to F16, the GEMM's x to 16 bits) the twin rounds the
 * same way; where a kernel only sums in another order or takes e^x from ex2.approx, the twin does
 * not imitate it: those are the kernels' own differences, which the kernel check measures.
 */
final class KernelTwins {

  static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  /** One kernel's Java body. */
  private interface Twin {
    void run(Launch launch);
  }

  private final Function<DevicePointer, MemorySegment> memory;
  private final ScalarKernels reference = new ScalarKernels();
  private final Map<PtxKernel, Twin> twins = new HashMap<>();

  KernelTwins(Function<DevicePointer, MemorySegment> memory) {
    this.memory = memory;
    twins.put(PtxKernels.EMBEDDING_F16, l -> embedding(l, DType.F16));
    twins.put(PtxKernels.EMBEDDING_BF16, l -> embedding(l, DType.BF16));
    twins.put(PtxKernels.EMBEDDING_F32, l -> embedding(l, DType.F32));
    twins.put(PtxKernels.RMS_NORM, this::rmsNorm);
    twins.put(PtxKernels.ADD_RMS_NORM, this::addRmsNorm);
    twins.put(PtxKernels.ROPE, this::rope);
    twins.put(PtxKernels.SILU_MUL, this::siluMul);
    twins.put(PtxKernels.RESIDUAL_ADD, this::residualAdd);
    twins.put(PtxKernels.GEMV_F16, l -> gemv(l, DType.F16));
    twins.put(PtxKernels.GEMV_BF16, l -> gemv(l, DType.BF16));
    twins.put(PtxKernels.GEMV_F32, l -> gemv(l, DType.F32));
    twins.put(PtxKernels.GEMV8_F16, l -> gemv8(l, DType.F16));
    twins.put(PtxKernels.GEMV8_BF16, l -> gemv8(l, DType.BF16));
    twins.put(PtxKernels.GEMM_F16, l -> gemm(l, DType.F16));
    twins.put(PtxKernels.GEMM_BF16, l -> gemm(l, DType.BF16));
    twins.put(PtxKernels.GEMM64_F16, l -> gemm(l, DType.F16));
    twins.put(PtxKernels.GEMM64_BF16, l -> gemm(l, DType.BF16));
    twins.put(PtxKernels.GEMM_SPLIT_SUM, this::gemmSplitSum);
    twins.put(PtxKernels.KV_APPEND, this::kvAppend);
    twins.put(PtxKernels.PAGED_ATTENTION, this::pagedAttention);
    twins.put(PtxKernels.LAYER_NORM, this::layerNorm);
    twins.put(PtxKernels.ADD_TABLE, this::addTable);
    twins.put(PtxKernels.QUICK_GELU, this::quickGelu);
    twins.put(PtxKernels.FULL_ATTENTION, l -> fullAttention(l, PtxKernels.FULL_ATTENTION_ROWS, false));
    twins.put(PtxKernels.FULL_ATTENTION_F16, l -> fullAttention(l, PtxKernels.FULL_ATTENTION_F16_ROWS, true));
    for (PtxKernel kernel : PtxKernels.ALL) {
      if (!twins.containsKey(kernel)) {
        throw new IllegalStateException("kernel " + kernel.name() + " has no CPU twin");
      }
    }
  }

  void run(PtxKernel kernel, int gridX, int gridY, Object[] args) {
    twins.get(kernel).run(new Launch(kernel, gridX, gridY, args));
  }

  /** A launch's grid and arguments, pointers resolved to this device's memory. */
  private final class Launch {
    final PtxKernel kernel;
    final int gridX;
    final int gridY;
    final Object[] args;

    Launch(PtxKernel kernel, int gridX, int gridY, Object[] args) {
      this.kernel = kernel;
      this.gridX = gridX;
      this.gridY = gridY;
      this.args = args;
    }

    MemorySegment mem(int i) {
      return memory.apply((DevicePointer) args[i]);
    }

    int i32(int i) {
      return (Integer) args[i];
    }

    float f32(int i) {
      return (Float) args[i];
    }

    /** Warps per block: the rows one GEMV block covers. */
    int warpsPerBlock() {
      return kernel.blockSize() / 32;
    }
  }

  // ---- elementwise.cu ----

  /** (out, table, ids, hidden, vocab); grid numTokens. An id outside the vocabulary gives a NaN row. */
  private void embedding(Launch l, DType dtype) {
    MemorySegment out = l.mem(0);
    MemorySegment table = l.mem(1);
    MemorySegment ids = l.mem(2);
    int hidden = l.i32(3);
    int vocab = l.i32(4);
    for (int t = 0; t < l.gridX; t++) {
      int id = ids.getAtIndex(I32, t);
      for (int c = 0; c < hidden; c++) {
        float value = id < 0 || id >= vocab ? Float.NaN : switch (dtype) {
          case F16 -> Float.float16ToFloat(table.getAtIndex(I16, (long) id * hidden + c));
          case BF16 -> Float.intBitsToFloat(table.getAtIndex(I16, (long) id * hidden + c) << 16);
          default -> table.getAtIndex(F32, (long) id * hidden + c);
        };
        out.setAtIndex(F32, (long) t * hidden + c, value);
      }
    }
  }

  /** (out, x, weights, modality, hidden, numModalities, eps); grid numRows. */
  private void rmsNorm(Launch l) {
    normRows(l.gridX, l.mem(0), l.mem(1), l.mem(2), l.mem(3), l.i32(4), l.i32(5), l.f32(6));
  }

  /** (out, residual, x, weights, modality, hidden, numModalities, eps); grid numRows. */
  private void addRmsNorm(Launch l) {
    MemorySegment residual = l.mem(1);
    MemorySegment x = l.mem(2);
    int hidden = l.i32(5);
    for (long i = 0; i < (long) l.gridX * hidden; i++) {
      residual.setAtIndex(F32, i, residual.getAtIndex(F32, i) + x.getAtIndex(F32, i));
    }
    normRows(l.gridX, l.mem(0), residual, l.mem(3), l.mem(4), hidden, l.i32(6), l.f32(7));
  }

  /** RMSNorm (the engine's) of rows [0, numRows) of x, each with its modality's weight row; NaN for a bad modality. */
  private void normRows(int numRows, MemorySegment out, MemorySegment x, MemorySegment weights,
      MemorySegment modality, int hidden, int numModalities, float eps) {
    float[] row = new float[hidden];
    float[] normed = new float[hidden];
    for (int t = 0; t < numRows; t++) {
      int m = numModalities == 1 ? 0 : modality.getAtIndex(I32, t);
      if (m < 0 || m >= numModalities) {
        Arrays.fill(normed, Float.NaN);
      } else {
        MemorySegment.copy(x, F32, 4L * t * hidden, row, 0, hidden);
        Matrix weight = new Matrix("twin.rms_norm.weight", weights, DType.F32, 1, hidden, hidden, (long) m * hidden);
        reference.rmsNorm(row, 0, weight, eps, normed, 0, hidden);
      }
      MemorySegment.copy(normed, 0, out, F32, 4L * t * hidden, hidden);
    }
  }

  /** (x, positions, cosTable, sinTable, numRows, numHeads, headDim, maxPositions); grid-stride. */
  private void rope(Launch l) {
    MemorySegment x = l.mem(0);
    MemorySegment positions = l.mem(1);
    MemorySegment cos = l.mem(2);
    MemorySegment sin = l.mem(3);
    int numRows = l.i32(4);
    int numHeads = l.i32(5);
    int headDim = l.i32(6);
    int maxPositions = l.i32(7);
    int half = headDim / 2;
    for (int t = 0; t < numRows; t++) {
      int p = positions.getAtIndex(I32, t);
      for (int h = 0; h < numHeads; h++) {
        long base = ((long) t * numHeads + h) * headDim;
        for (int j = 0; j < half; j++) {
          if (p < 0 || p >= maxPositions) {
            x.setAtIndex(F32, base + j, Float.NaN);
            x.setAtIndex(F32, base + j + half, Float.NaN);
            continue;
          }
          float c = cos.getAtIndex(F32, (long) p * half + j);
          float s = sin.getAtIndex(F32, (long) p * half + j);
          float x1 = x.getAtIndex(F32, base + j);
          float x2 = x.getAtIndex(F32, base + j + half);
          // RotaryEmbedding.apply's arithmetic: x' = x cos + rotate_half(x) sin
          x.setAtIndex(F32, base + j, x1 * c + (-x2) * s);
          x.setAtIndex(F32, base + j + half, x2 * c + x1 * s);
        }
      }
    }
  }

  /** (out, gate, up, n); grid-stride. */
  private void siluMul(Launch l) {
    int n = l.i32(3);
    float[] gate = floats(l.mem(1), n);
    float[] up = floats(l.mem(2), n);
    reference.siluMul(gate, 0, up, 0, gate, 0, n);
    MemorySegment.copy(gate, 0, l.mem(0), F32, 0, n);
  }

  /** (y, x, n); grid-stride. */
  private void residualAdd(Launch l) {
    int n = l.i32(2);
    float[] y = floats(l.mem(0), n);
    reference.axpy(1f, floats(l.mem(1), n), 0, y, 0, n);
    MemorySegment.copy(y, 0, l.mem(0), F32, 0, n);
  }

  // ---- gemv.cu and gemm.cu: out[t, r] = sum_c W[r, c] x[t, c] ----

  /** (out, w, x, rows, cols); grid (rows / warps per block, numTokens). */
  private void gemv(Launch l, DType dtype) {
    int rows = l.i32(3);
    product(l, dtype, Math.min(rows, l.gridX * l.warpsPerBlock()), rows, l.gridY, false);
  }

  /** (out, w, x, rows, cols, numTokens); grid (rows / warps per block, numTokens / 8). */
  private void gemv8(Launch l, DType dtype) {
    int rows = l.i32(3);
    int numTokens = Math.min(l.i32(5), l.gridY * PtxKernels.GEMV8_TOKENS);
    product(l, dtype, Math.min(rows, l.gridX * l.warpsPerBlock()), rows, numTokens, false);
  }

  /**
   * (out, w, x, rows, cols, numTokens, kPerSplit); grid (rows / tile, token tiles x splits); x rounded
   * to W's 16-bit type. Split s (grid rows past the first token tiles) writes the sums over its
   * columns [s kPerSplit, (s + 1) kPerSplit) to out + s numTokens rows.
   */
  private void gemm(Launch l, DType dtype) {
    int rows = l.i32(3);
    int cols = l.i32(4);
    int tile = PtxKernels.gemmTile(l.kernel);
    int tokenTiles = (l.i32(5) + tile - 1) / tile;
    int numTokens = Math.min(l.i32(5), l.gridY * tile);
    int kPerSplit = l.i32(6);
    int coveredRows = Math.min(rows, l.gridX * tile);
    int splits = Math.max(1, l.gridY / tokenTiles);
    for (int s = 0; s < splits; s++) {
      int k0 = Math.min(cols, s * kPerSplit);
      int k1 = Math.min(cols, k0 + kPerSplit);
      product(l, dtype, coveredRows, rows, numTokens, true, k0, k1, 4L * s * l.i32(5) * rows);
    }
  }

  /** (out, partials, n, splits): out[i] = partials[i] + partials[n + i] + ..., in split order. */
  private void gemmSplitSum(Launch l) {
    int n = l.i32(2);
    int splits = l.i32(3);
    float[] partials = floats(l.mem(1), n * splits);
    float[] sum = new float[n];
    for (int i = 0; i < n; i++) {
      float v = partials[i];
      for (int s = 1; s < splits; s++) {
        v += partials[s * n + i];
      }
      sum[i] = v;
    }
    MemorySegment.copy(sum, 0, l.mem(0), F32, 0, n);
  }

  /** The product of W's first {@code coveredRows} rows with {@code numTokens} rows of x, through the engine's matmul. */
  private void product(Launch l, DType dtype, int coveredRows, int rows, int numTokens, boolean roundX) {
    product(l, dtype, coveredRows, rows, numTokens, roundX, 0, l.i32(4), 0);
  }

  /** As above over columns [k0, k1) only, written from byte {@code outOffset} of out. */
  private void product(Launch l, DType dtype, int coveredRows, int rows, int numTokens, boolean roundX, int k0, int k1,
      long outOffset) {
    MemorySegment out = l.mem(0).asSlice(outOffset);
    int cols = l.i32(4);
    int width = k1 - k0;
    float[] all = floats(l.mem(2), numTokens * cols);
    float[] x = new float[numTokens * width];
    for (int t = 0; t < numTokens; t++) {
      System.arraycopy(all, t * cols + k0, x, t * width, width);
    }
    if (roundX) {
      for (int i = 0; i < x.length; i++) {
        x[i] = dtype == DType.F16 ? Float.float16ToFloat(Float.floatToFloat16(x[i]))
            : Float.intBitsToFloat(WeightFormat.toBf16(x[i]) << 16);
      }
    }
    Matrix w = new Matrix("twin." + l.kernel.name() + ".w", l.mem(1), dtype, coveredRows, width, cols, k0);
    float[] result = new float[numTokens * coveredRows];
    reference.matmul(w, x, 0, result, 0, numTokens);
    for (int t = 0; t < numTokens; t++) {
      MemorySegment.copy(result, t * coveredRows, out, F32, 4L * t * rows, coveredRows);
    }
  }

  // ---- attention.cu ----

  /** Element index of (pos, kv head 0) in the pool for one table, or -1 outside it (attention.cu's slot_base). */
  private static long slotBase(MemorySegment tables, long tableStart, int pos, int blockSize, int maxBlocksPerSeq,
      int kvWidth) {
    int i = pos / blockSize;
    if (pos < 0 || i >= maxBlocksPerSeq) {
      return -1;
    }
    int block = tables.getAtIndex(I32, tableStart + i);
    return block < 0 ? -1 : ((long) block * blockSize + (pos - (long) i * blockSize)) * kvWidth;
  }

  /** (kCache, vCache, key, value, blockTables, rowSeq, rowPos, numRows, numKvHeads, headDim, blockSize, maxBlocksPerSeq). */
  private void kvAppend(Launch l) {
    MemorySegment kCache = l.mem(0);
    MemorySegment vCache = l.mem(1);
    MemorySegment key = l.mem(2);
    MemorySegment value = l.mem(3);
    MemorySegment tables = l.mem(4);
    MemorySegment rowSeq = l.mem(5);
    MemorySegment rowPos = l.mem(6);
    int numRows = l.i32(7);
    int kvWidth = l.i32(8) * l.i32(9);
    int blockSize = l.i32(10);
    int maxBlocksPerSeq = l.i32(11);
    for (int t = 0; t < numRows; t++) {
      long base = slotBase(tables, (long) rowSeq.getAtIndex(I32, t) * maxBlocksPerSeq, rowPos.getAtIndex(I32, t),
          blockSize, maxBlocksPerSeq, kvWidth);
      if (base < 0) {
        continue;
      }
      for (int e = 0; e < kvWidth; e++) {
        kCache.setAtIndex(I16, base + e, Float.floatToFloat16(key.getAtIndex(F32, (long) t * kvWidth + e)));
        vCache.setAtIndex(I16, base + e, Float.floatToFloat16(value.getAtIndex(F32, (long) t * kvWidth + e)));
      }
    }
  }

  /**
   * (out, q, kCache, vCache, blockTables, rowSeq, rowPos, numHeads, numKvHeads, headDim, blockSize,
   * maxBlocksPerSeq, scale); grid (numHeads, numRows). Each row through the engine's attention, as one
   * causal query over its sequence's positions [0, rowPos] read from the paged F16 pool.
   */
  private void pagedAttention(Launch l) {
    MemorySegment out = l.mem(0);
    MemorySegment q = l.mem(1);
    MemorySegment kCache = l.mem(2);
    MemorySegment vCache = l.mem(3);
    MemorySegment tables = l.mem(4);
    MemorySegment rowSeq = l.mem(5);
    MemorySegment rowPos = l.mem(6);
    int numHeads = l.i32(7);
    int numKvHeads = l.i32(8);
    int headDim = l.i32(9);
    int blockSize = l.i32(10);
    int maxBlocksPerSeq = l.i32(11);
    AttentionShape shape = new AttentionShape(numHeads, numKvHeads, headDim, l.f32(12));
    int width = numHeads * headDim;
    int kvWidth = numKvHeads * headDim;
    float[] query = new float[width];
    float[] result = new float[width];
    for (int row = 0; row < l.gridY; row++) {
      int t = row;
      long tableStart = (long) rowSeq.getAtIndex(I32, t) * maxBlocksPerSeq;
      int pos = rowPos.getAtIndex(I32, t);
      KeyValueRows pool = new KeyValueRows() {
        @Override
        public void readKeys(int kvHead, int from, int count, float[] dst, int dstOffset) {
          read(kCache, kvHead, from, count, dst, dstOffset);
        }

        @Override
        public void readValues(int kvHead, int from, int count, float[] dst, int dstOffset) {
          read(vCache, kvHead, from, count, dst, dstOffset);
        }

        private void read(MemorySegment cache, int kvHead, int from, int count, float[] dst, int dstOffset) {
          for (int j = 0; j < count; j++) {
            long base = slotBase(tables, tableStart, from + j, blockSize, maxBlocksPerSeq, kvWidth);
            if (base < 0) {
              throw new IllegalStateException("paged_attention twin: position %d of row %d is outside its block table"
                  .formatted(from + j, t));
            }
            for (int d = 0; d < headDim; d++) {
              dst[dstOffset + j * headDim + d] =
                  Float.float16ToFloat(cache.getAtIndex(I16, base + (long) kvHead * headDim + d));
            }
          }
        }
      };
      MemorySegment.copy(q, F32, 4L * t * width, query, 0, width);
      reference.attention(query, 0, pool, shape, AttentionMask.CAUSAL, 1, pos + 1, result, 0);
      int heads = Math.min(numHeads, l.gridX); // blocks cover heads [0, gridX)
      MemorySegment.copy(result, 0, out, F32, 4L * t * width, heads * headDim);
    }
  }

  // ---- vision.cu ----

  /** (out, x, weight, bias, hidden, eps); grid numRows. The rows through the engine's layerNorm. */
  private void layerNorm(Launch l) {
    MemorySegment out = l.mem(0);
    MemorySegment x = l.mem(1);
    int hidden = l.i32(4);
    Matrix weight = new Matrix("twin.layer_norm.weight", l.mem(2), DType.F32, 1, hidden, hidden, 0);
    Matrix bias = new Matrix("twin.layer_norm.bias", l.mem(3), DType.F32, 1, hidden, hidden, 0);
    float[] rows = new float[l.gridX * hidden];
    float[] normed = new float[rows.length];
    MemorySegment.copy(x, F32, 0, rows, 0, rows.length);
    reference.layerNorm(rows, 0, weight, bias, l.f32(5), normed, 0, l.gridX, hidden);
    MemorySegment.copy(normed, 0, out, F32, 0, normed.length);
  }

  /** (out, x, table, n, tableSize); grid-stride: one rounded add per element, as the engine's addBias. */
  private void addTable(Launch l) {
    MemorySegment out = l.mem(0);
    MemorySegment x = l.mem(1);
    MemorySegment table = l.mem(2);
    int n = l.i32(3);
    int tableSize = l.i32(4);
    for (long i = 0; i < n; i++) {
      out.setAtIndex(F32, i, x.getAtIndex(F32, i) + table.getAtIndex(F32, i % tableSize));
    }
  }

  /** (x, n); grid-stride. */
  private void quickGelu(Launch l) {
    int n = l.i32(1);
    float[] x = floats(l.mem(0), n);
    reference.quickGelu(x, 0, n);
    MemorySegment.copy(x, 0, l.mem(0), F32, 0, n);
  }

  /**
   * (out, q, k, v, numQueries, numKeys, headDim, qImageStride, qRowStride, qHeadStride, kvImageStride,
   * kvRowStride, kvHeadStride, scale); grid (numHeads, numImages * ceil(numQueries / rowsPerBlock)).
   * Each image's queries through the engine's attention without a mask, over its key and value rows
   * read in place; the tensor-core kernel's inputs rounded to F16 as it rounds them (its F16 softmax
   * weights are its own difference, which the kernel check measures).
   */
  private void fullAttention(Launch l, int rowsPerBlock, boolean roundToF16) {
    MemorySegment out = l.mem(0);
    MemorySegment q = l.mem(1);
    MemorySegment k = l.mem(2);
    MemorySegment v = l.mem(3);
    int numQueries = l.i32(4);
    int numKeys = l.i32(5);
    int headDim = l.i32(6);
    int qImageStride = l.i32(7);
    int qRowStride = l.i32(8);
    int qHeadStride = l.i32(9);
    int kvImageStride = l.i32(10);
    int kvRowStride = l.i32(11);
    int kvHeadStride = l.i32(12);
    int numHeads = l.gridX;
    int tilesPerImage = (numQueries + rowsPerBlock - 1) / rowsPerBlock;
    int numImages = l.gridY / tilesPerImage; // whole images only: the host launches whole images
    AttentionShape shape = new AttentionShape(numHeads, numHeads, headDim, l.f32(13));
    int width = numHeads * headDim;
    float[] query = new float[numQueries * width];
    float[] result = new float[numQueries * width];
    for (int img = 0; img < numImages; img++) {
      long kvBase = (long) img * kvImageStride;
      for (int i = 0; i < numQueries; i++) {
        for (int h = 0; h < numHeads; h++) {
          MemorySegment.copy(q, F32, 4L * ((long) img * qImageStride + (long) i * qRowStride + (long) h * qHeadStride),
              query, i * width + h * headDim, headDim);
        }
      }
      if (roundToF16) {
        roundToF16(query, query.length);
      }
      KeyValueRows rows = new KeyValueRows() {
        @Override
        public void readKeys(int kvHead, int from, int count, float[] dst, int dstOffset) {
          read(k, kvHead, from, count, dst, dstOffset);
        }

        @Override
        public void readValues(int kvHead, int from, int count, float[] dst, int dstOffset) {
          read(v, kvHead, from, count, dst, dstOffset);
        }

        private void read(MemorySegment data, int head, int from, int count, float[] dst, int dstOffset) {
          for (int j = 0; j < count; j++) {
            long at = kvBase + (long) (from + j) * kvRowStride + (long) head * kvHeadStride;
            MemorySegment.copy(data, F32, 4L * at, dst, dstOffset + j * headDim, headDim);
          }
          if (roundToF16) {
            for (int e = dstOffset; e < dstOffset + count * headDim; e++) {
              dst[e] = Float.float16ToFloat(Float.floatToFloat16(dst[e]));
            }
          }
        }
      };
      reference.attention(query, 0, rows, shape, AttentionMask.NONE, numQueries, numKeys, result, 0);
      MemorySegment.copy(result, 0, out, F32, 4L * img * numQueries * width, numQueries * width);
    }
  }

  private static void roundToF16(float[] values, int count) {
    for (int i = 0; i < count; i++) {
      values[i] = Float.float16ToFloat(Float.floatToFloat16(values[i]));
    }
  }

  private static float[] floats(MemorySegment segment, int count) {
    float[] out = new float[count];
    MemorySegment.copy(segment, F32, 0, out, 0, count);
    return out;
  }
}
