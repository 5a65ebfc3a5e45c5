package dev.owlery.engine.cuda.check;

import dev.owlery.engine.cuda.check.ElementwiseCases.AddRmsNormCase;
import dev.owlery.engine.cuda.check.ElementwiseCases.EmbeddingCase;
import dev.owlery.engine.cuda.check.ElementwiseCases.ResidualAddCase;
import dev.owlery.engine.cuda.check.ElementwiseCases.RmsNormCase;
import dev.owlery.engine.cuda.check.ElementwiseCases.RopeCase;
import dev.owlery.engine.cuda.check.ElementwiseCases.SiluMulCase;
import dev.owlery.engine.cuda.check.VisionCases.AddTableCase;
import dev.owlery.engine.cuda.check.VisionCases.FullAttentionCase;
import dev.owlery.engine.cuda.check.VisionCases.LayerNormCase;
import dev.owlery.engine.cuda.check.VisionCases.QuickGeluCase;
import dev.owlery.engine.cuda.check.VisionCases.Rows;
import dev.owlery.engine.cuda.ptx.PtxKernel;
import dev.owlery.engine.cuda.ptx.PtxKernels;
import dev.owlery.engine.tensor.DType;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * The kernel check's cases: every kernel at sizes that are not multiples of its vector width, warp or
 * tile (777 columns, 333 rows, 17 and 70 tokens), at 1 token, over block tables that skip and reorder
 * pool blocks; inputs drawn from one seed.
 */
final class CheckCases {

  static final long SEED = 20261204L;

  private CheckCases() {}

  static List<KernelCase> all() {
    SplittableRandom random = new SplittableRandom(SEED);
    List<KernelCase> cases = new ArrayList<>();
    // embedding gather, each table dtype; ids include both ends of the vocabulary
    for (DType dtype : List.of(DType.F16, DType.BF16, DType.F32)) {
      int[] ids = random.ints(17, 0, 1001).toArray();
      ids[0] = 0;
      ids[16] = 1000;
      cases.add(new EmbeddingCase(Weights.random(dtype, 1001, 777, 1.0, random), ids));
    }
    // RMSNorm: two modalities mixed row by row, and one modality serving a visual row
    cases.add(rmsNorm(777, 2, new int[] {0, 0, 1, 1, 1, 0, 1, 0, 0, 0, 1, 1, 0, 1, 0, 0, 1}, random));
    cases.add(rmsNorm(288, 1, new int[] {1}, random));
    cases.add(new AddRmsNormCase(rmsNorm(777, 2, new int[] {1, 0, 0, 1, 0}, random),
        Gaussian.floats(5 * 777, 2.0, random)));
    // RoPE on 17 rows of 5 heads of 24, positions from 0 to the table's last
    int[] positions = random.ints(17, 0, 300).toArray();
    positions[0] = 0;
    positions[1] = 299;
    cases.add(new RopeCase(5, 24, 300, 10000f, Gaussian.floats(17 * 5 * 24, 1.0, random), positions));
    cases.add(new SiluMulCase(Gaussian.floats(17 * 777, 3.0, random), Gaussian.floats(17 * 777, 1.0, random)));
    cases.add(new ResidualAddCase(Gaussian.floats(17 * 777, 1.0, random), Gaussian.floats(17 * 777, 1.0, random)));
    // GEMV: odd columns (rows not 16-byte aligned: the element-by-element path) at 1 token, aligned
    // columns (the 16-byte path) at 3 tokens; and an lm_head vocabulary slice of 4001 rows
    cases.add(matmul(PtxKernels.GEMV_F16, DType.F16, 333, 777, 1, random));
    cases.add(matmul(PtxKernels.GEMV_F16, DType.F16, 333, 1024, 3, random));
    cases.add(matmul(PtxKernels.GEMV_BF16, DType.BF16, 333, 777, 1, random));
    cases.add(matmul(PtxKernels.GEMV_BF16, DType.BF16, 333, 1024, 3, random));
    cases.add(matmul(PtxKernels.GEMV_F32, DType.F32, 333, 777, 1, random));
    cases.add(matmul(PtxKernels.GEMV_F32, DType.F32, 333, 1024, 3, random));
    cases.add(matmul(PtxKernels.GEMV_F16, DType.F16, 4001, 96, 1, random));
    // 8 tokens per warp: a partial group of 3, and 17 tokens (groups of 8, 8 and 1)
    for (var entry : List.of(PtxKernels.GEMV8_F16, PtxKernels.GEMV8_BF16)) {
      DType dtype = entry == PtxKernels.GEMV8_F16 ? DType.F16 : DType.BF16;
      cases.add(matmul(entry, dtype, 333, 777, 3, random));
      cases.add(matmul(entry, dtype, 333, 1024, 17, random));
    }
    // GEMM: partial tiles in rows and tokens, partial 32-column K tiles, unaligned rows, fewer K
    // tiles than stages, and 2 x 3 blocks of 128 x 128 over 8 K tiles (the stage ring wraps)
    for (var entry : List.of(PtxKernels.GEMM_F16, PtxKernels.GEMM_BF16, PtxKernels.GEMM64_F16,
        PtxKernels.GEMM64_BF16)) {
      DType dtype = entry == PtxKernels.GEMM_F16 || entry == PtxKernels.GEMM64_F16 ? DType.F16 : DType.BF16;
      cases.add(matmul(entry, dtype, 333, 777, 17, random));
      cases.add(matmul(entry, dtype, 333, 1024, 70, random));
      cases.add(matmul(entry, dtype, 130, 2048, 1, random));
      cases.add(matmul(entry, dtype, 130, 64, 200, random));
      cases.add(matmul(entry, dtype, 256, 256, 300, random));
      // K splits summed by gemm_split_sum: 4 over 1024 columns; 3 over 777 (the last partial)
      cases.add(new MatmulCase(entry, Weights.random(dtype, 130, 1024, 0.05, random), 17,
          Gaussian.floats(17 * 1024, 1.0, random), 4));
      cases.add(new MatmulCase(entry, Weights.random(dtype, 333, 777, 0.05, random), 9,
          Gaussian.floats(9 * 777, 1.0, random), 3));
    }
    cases.add(kvAppend(random));
    // attention: GQA (6 query heads on 2 kv heads), headDim 40 (a partial lane pair group), decode
    // rows of 41 and 1 keys and a 17-row prefill chunk at positions 23..39
    cases.add(attention(new PagedLayout(12, 16, 2, 40, new int[][] {{3, 8, 1}, {10}, {11, 6, 0}}), 6,
        new int[] {0, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2},
        new int[] {40, 0, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39}, random));
    // attention at LLaMA's headDim 128: a decode row over 300 keys (19 blocks, odd ids in reverse)
    // and a 17-row chunk at positions 100..116 (even ids)
    int[] odd = new int[19];
    for (int i = 0; i < odd.length; i++) {
      odd[i] = 37 - 2 * i;
    }
    int[] even = {0, 2, 4, 6, 8, 10, 12, 14};
    int[] rowSeq = new int[18];
    int[] rowPos = new int[18];
    rowPos[0] = 299;
    for (int i = 1; i < 18; i++) {
      rowSeq[i] = 1;
      rowPos[i] = 99 + i;
    }
    cases.add(attention(new PagedLayout(40, 16, 4, 128, new int[][] {odd, even}), 4, rowSeq, rowPos, random));
    // the largest headDim (256) with one kv head for 3 query heads; blocks of 7 positions
    cases.add(attention(new PagedLayout(6, 16, 1, 256, new int[][] {{5, 1}, {3}}), 3, new int[] {0, 1},
        new int[] {20, 9}, random));
    cases.add(attention(new PagedLayout(9, 7, 2, 64, new int[][] {{8, 0, 4, 2}, {7, 1}}), 4, new int[] {0, 0, 0, 1},
        new int[] {25, 26, 27, 13}, random));
    addVisionCases(cases, random);
    return cases;
  }

  /**
   * vision.cu: LayerNorm at an odd width and on rows far from zero mean (the two-pass variance), a
   * bias and an image's position table added, QuickGELU, and attention both as the ViT calls it (q,
   * k, v interleaved per head in fused rows; 37 tokens: two key tiles, a partial row group) and as the
   * abstractor does (separate q, k, v; 5 queries over 70 keys; the largest headDim) for 3 and 2 images,
   * and its tensor-core form at the F16 towers' shapes.
   */
  private static void addVisionCases(List<KernelCase> cases, SplittableRandom random) {
    cases.add(layerNorm(777, 17, 0.0, random));
    cases.add(layerNorm(64, 9, 30.0, random));
    cases.add(new AddTableCase(Gaussian.floats(17 * 777, 1.0, random), Gaussian.floats(777, 1.0, random)));
    cases.add(new AddTableCase(Gaussian.floats(3 * 17 * 64, 1.0, random), Gaussian.floats(17 * 64, 1.0, random)));
    cases.add(new QuickGeluCase(Gaussian.floats(17 * 777, 3.0, random)));
    int numTokens = 37;
    int heads = 3;
    int headDim = 40;
    int fusedRow = 3 * heads * headDim;
    float[] qkv = Gaussian.floats(3 * numTokens * fusedRow, 1.0, random);
    int image = numTokens * fusedRow;
    cases.add(new FullAttentionCase(3, numTokens, numTokens, heads, headDim,
        new Rows(qkv, 0, image, fusedRow, 3 * headDim), new Rows(qkv, headDim, image, fusedRow, 3 * headDim),
        new Rows(qkv, 2 * headDim, image, fusedRow, 3 * headDim), false));
    int width = 2 * 128;
    cases.add(new FullAttentionCase(2, 5, 70, 2, 128,
        new Rows(Gaussian.floats(2 * 5 * width, 1.0, random), 0, 5 * width, width, 128),
        new Rows(Gaussian.floats(2 * 70 * width, 1.0, random), 0, 70 * width, width, 128),
        new Rows(Gaussian.floats(2 * 70 * width, 1.0, random), 0, 70 * width, width, 128), false));
    // tensor cores: ViT rows of 70 tokens (a whole and a partial block of 64 rows, a partial key
    // tile) at headDim 64, and the abstractor's shape at headDim 16: 5 queries over 37 keys
    int fused64 = 3 * 2 * 64;
    float[] qkv64 = Gaussian.floats(2 * 70 * fused64, 1.0, random);
    cases.add(new FullAttentionCase(2, 70, 70, 2, 64, new Rows(qkv64, 0, 70 * fused64, fused64, 3 * 64),
        new Rows(qkv64, 64, 70 * fused64, fused64, 3 * 64), new Rows(qkv64, 128, 70 * fused64, fused64, 3 * 64), true));
    int width16 = 3 * 16;
    cases.add(new FullAttentionCase(2, 5, 37, 3, 16,
        new Rows(Gaussian.floats(2 * 5 * width16, 1.0, random), 0, 5 * width16, width16, 16),
        new Rows(Gaussian.floats(2 * 37 * width16, 1.0, random), 0, 37 * width16, width16, 16),
        new Rows(Gaussian.floats(2 * 37 * width16, 1.0, random), 0, 37 * width16, width16, 16), true));
  }

  private static LayerNormCase layerNorm(int hidden, int rows, double offset, SplittableRandom random) {
    float[] weight = new float[hidden];
    for (int i = 0; i < hidden; i++) {
      weight[i] = (float) (1 + 0.2 * Gaussian.next(random));
    }
    float[] x = Gaussian.floats(rows * hidden, 2.0, random);
    for (int i = 0; i < x.length; i++) {
      x[i] += (float) offset;
    }
    return new LayerNormCase(weight, Gaussian.floats(hidden, 0.1, random), 1e-5f, x);
  }

  private static RmsNormCase rmsNorm(int hidden, int numModalities, int[] modality, SplittableRandom random) {
    float[] weights = new float[numModalities * hidden];
    for (int i = 0; i < weights.length; i++) {
      weights[i] = (float) (1 + 0.2 * Gaussian.next(random));
    }
    return new RmsNormCase(hidden, numModalities, weights, 1e-6f, Gaussian.floats(modality.length * hidden, 2.0, random),
        modality);
  }

  private static MatmulCase matmul(PtxKernel kernel, DType dtype, int rows, int cols, int tokens,
      SplittableRandom random) {
    return new MatmulCase(kernel, Weights.random(dtype, rows, cols, 0.05, random), tokens,
        Gaussian.floats(tokens * cols, 1.0, random));
  }

  /** A decode row (position 17), a first token (position 0) and a 17-row chunk at 30..46, over tables with holes. */
  private static KvAppendCase kvAppend(SplittableRandom random) {
    PagedLayout layout = new PagedLayout(12, 16, 3, 24, new int[][] {{5, 2}, {7}, {0, 9, 4}});
    int[] rowSeq = new int[19];
    int[] rowPos = new int[19];
    rowSeq[0] = 0;
    rowPos[0] = 17;
    rowSeq[1] = 1;
    rowPos[1] = 0;
    for (int i = 2; i < 19; i++) {
      rowSeq[i] = 2;
      rowPos[i] = 28 + i;
    }
    int n = rowSeq.length * layout.kvWidth();
    return new KvAppendCase(layout, rowSeq, rowPos, Gaussian.floats(n, 1.0, random), Gaussian.floats(n, 1.0, random));
  }

  /** Keys and values for every cached position (rounded to F16, as the cache holds them) and the rows' queries. */
  private static AttentionCase attention(PagedLayout layout, int numHeads, int[] rowSeq, int[] rowPos,
      SplittableRandom random) {
    int numSeqs = layout.tables().length;
    float[][] keys = new float[numSeqs][];
    float[][] values = new float[numSeqs][];
    for (int s = 0; s < numSeqs; s++) {
      int length = 0;
      for (int t = 0; t < rowSeq.length; t++) {
        length = rowSeq[t] == s ? Math.max(length, rowPos[t] + 1) : length;
      }
      keys[s] = roundedToF16(Gaussian.floats(length * layout.kvWidth(), 1.0, random));
      values[s] = roundedToF16(Gaussian.floats(length * layout.kvWidth(), 1.0, random));
    }
    float[] q = Gaussian.floats(rowSeq.length * numHeads * layout.headDim(), 1.0, random);
    return new AttentionCase(layout, numHeads, rowSeq, rowPos, q, keys, values);
  }

  private static float[] roundedToF16(float[] values) {
    for (int i = 0; i < values.length; i++) {
      values[i] = Float.float16ToFloat(Float.floatToFloat16(values[i]));
    }
    return values;
  }
}
