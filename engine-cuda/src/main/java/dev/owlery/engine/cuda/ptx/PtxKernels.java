package dev.owlery.engine.cuda.ptx;

import static dev.owlery.engine.cuda.ptx.PtxModule.ATTENTION;
import static dev.owlery.engine.cuda.ptx.PtxModule.ELEMENTWISE;
import static dev.owlery.engine.cuda.ptx.PtxModule.GEMM;
import static dev.owlery.engine.cuda.ptx.PtxModule.GEMV;
import static dev.owlery.engine.cuda.ptx.PtxModule.VISION;

import dev.owlery.engine.cuda.ptx.PtxKernel.Param;
import dev.owlery.engine.cuda.ptx.PtxKernel.ParamType;
import java.util.List;

/**
 * The catalogue of kernels in {@code engine-cuda/src/main/cuda}: entry names, parameters in order
 * and block sizes, as the CUDA C declares them (PtxCatalogueTest holds this list to the PTX's
 * {@code .entry} declarations). The grid of each launch is in the kernel's source comment.
 *
 * <p>Conventions shared by all: activations are float32 rows; weights F16, BF16 or F32 row-major
 * {@code [rows, cols]}; the KV cache is F16 in the {@code KvBlockPool} layout {@code [numBlocks,
 * blockSize, numKvHeads, headDim]}; int arrays are int32; accumulation is float32.
 */
public final class PtxKernels {

  // ---- elementwise.cu ----

  /** {@code out[t, :] = table[ids[t], :]}, F16 table; grid numTokens. */
  public static final PtxKernel EMBEDDING_F16 = kernel(ELEMENTWISE, "embedding_f16", 256,
      ptr("out"), ptr("table"), ptr("ids"), i32("hidden"), i32("vocab"));
  /** As {@link #EMBEDDING_F16}, BF16 table. */
  public static final PtxKernel EMBEDDING_BF16 = kernel(ELEMENTWISE, "embedding_bf16", 256,
      ptr("out"), ptr("table"), ptr("ids"), i32("hidden"), i32("vocab"));
  /** As {@link #EMBEDDING_F16}, F32 table. */
  public static final PtxKernel EMBEDDING_F32 = kernel(ELEMENTWISE, "embedding_f32", 256,
      ptr("out"), ptr("table"), ptr("ids"), i32("hidden"), i32("vocab"));
  /** RMSNorm with per-row modality picking the weight (MAM); weights float32 [numModalities, hidden]; grid numRows. */
  public static final PtxKernel RMS_NORM = kernel(ELEMENTWISE, "rms_norm", 256,
      ptr("out"), ptr("x"), ptr("weights"), ptr("modality"), i32("hidden"), i32("numModalities"), f32("eps"));
  /** {@code residual += x}, then RMSNorm (MAM) of the new residual into out, one pass; grid numRows. */
  public static final PtxKernel ADD_RMS_NORM = kernel(ELEMENTWISE, "add_rms_norm", 256,
      ptr("out"), ptr("residual"), ptr("x"), ptr("weights"), ptr("modality"), i32("hidden"), i32("numModalities"),
      f32("eps"));
  /** RoPE in place on rows of numHeads heads, rotate-half convention, host-built cos/sin tables. */
  public static final PtxKernel ROPE = kernel(ELEMENTWISE, "rope", 256,
      ptr("x"), ptr("positions"), ptr("cosTable"), ptr("sinTable"), i32("numRows"), i32("numHeads"), i32("headDim"),
      i32("maxPositions"));
  /** {@code out = silu(gate) * up} over n floats. */
  public static final PtxKernel SILU_MUL = kernel(ELEMENTWISE, "silu_mul", 256,
      ptr("out"), ptr("gate"), ptr("up"), i32("n"));
  /** {@code y += x} over n floats. */
  public static final PtxKernel RESIDUAL_ADD = kernel(ELEMENTWISE, "residual_add", 256,
      ptr("y"), ptr("x"), i32("n"));

  // ---- gemv.cu: out[t, r] = sum_c W[r, c] x[t, c]; grid (ceil(rows / 8), numTokens) at 256 threads ----

  /** Decode GEMV, F16 weights. */
  public static final PtxKernel GEMV_F16 = gemv("gemv_f16");
  /** Decode GEMV, BF16 weights. */
  public static final PtxKernel GEMV_BF16 = gemv("gemv_bf16");
  /** Decode GEMV, F32 weights (also the batched path for F32 weights: grid.y covers the tokens). */
  public static final PtxKernel GEMV_F32 = gemv("gemv_f32");
  /** Batched-decode GEMV, F16 weights: a warp per row for 8 tokens; grid (ceil(rows / 8), ceil(numTokens / 8)). */
  public static final PtxKernel GEMV8_F16 = gemv8("gemv8_f16");
  /** As {@link #GEMV8_F16}, BF16 weights. */
  public static final PtxKernel GEMV8_BF16 = gemv8("gemv8_bf16");
  /** Tokens per warp of the gemv8 kernels (GEMV_TOKENS in gemv.cu). */
  public static final int GEMV8_TOKENS = 8;

  // ---- gemm.cu: the same product on tensor cores; grid (ceil(rows / tile), ceil(numTokens / tile)) ----

  /** Rows and tokens of the square block tile of {@link #GEMM_F16} and {@link #GEMM_BF16}. */
  public static final int GEMM_TILE = 128;
  /** Rows and tokens of the square block tile of {@link #GEMM64_F16} and {@link #GEMM64_BF16}. */
  public static final int GEMM64_TILE = 64;
  /** mma.sync GEMM for prefill, F16 weights, x rounded to F16: 128 x 128 tiles, 8 warps, 3 stages. */
  public static final PtxKernel GEMM_F16 = gemm("gemm_f16", GEMM_TILE, 256, 3);
  /** As {@link #GEMM_F16}, BF16 weights, x rounded to BF16. */
  public static final PtxKernel GEMM_BF16 = gemm("gemm_bf16", GEMM_TILE, 256, 3);
  /** mma.sync GEMM for batched decode, F16 weights: 64 x 64 tiles, 4 warps, 4 stages. */
  public static final PtxKernel GEMM64_F16 = gemm("gemm64_f16", GEMM64_TILE, 128, 4);
  /** As {@link #GEMM64_F16}, BF16 weights. */
  public static final PtxKernel GEMM64_BF16 = gemm("gemm64_bf16", GEMM64_TILE, 128, 4);
  /** {@code out[i] = sum over s of partials[s n + i]} in split order: a K-split GEMM's sum; grid-stride. */
  public static final PtxKernel GEMM_SPLIT_SUM = kernel(GEMM, "gemm_split_sum", 256,
      ptr("out"), ptr("partials"), i32("n"), i32("splits"));

  // ---- attention.cu ----

  /** Writes each row's k and v (float32, after RoPE) into the F16 cache at its block table's slot. */
  public static final PtxKernel KV_APPEND = kernel(ATTENTION, "kv_append", 256,
      ptr("kCache"), ptr("vCache"), ptr("key"), ptr("value"), ptr("blockTables"), ptr("rowSeq"), ptr("rowPos"),
      i32("numRows"), i32("numKvHeads"), i32("headDim"), i32("blockSize"), i32("maxBlocksPerSeq"));
  /** Each row over its sequence's positions {@code [0, rowPos]}; grid (numHeads, numRows). */
  public static final PtxKernel PAGED_ATTENTION = kernel(ATTENTION, "paged_attention", 256,
      ptr("out"), ptr("q"), ptr("kCache"), ptr("vCache"), ptr("blockTables"), ptr("rowSeq"), ptr("rowPos"),
      i32("numHeads"), i32("numKvHeads"), i32("headDim"), i32("blockSize"), i32("maxBlocksPerSeq"), f32("scale"));

  /** The largest headDim {@link #PAGED_ATTENTION} takes (ATTN_MAX_PAIRS in attention.cu); it must also be even. */
  public static final int MAX_ATTENTION_HEAD_DIM = 256;

  // ---- vision.cu ----

  /** LayerNorm with weight and bias (float32 [hidden]), two-pass mean and variance; grid numRows. */
  public static final PtxKernel LAYER_NORM = kernel(VISION, "layer_norm", 256,
      ptr("out"), ptr("x"), ptr("weight"), ptr("bias"), i32("hidden"), f32("eps"));
  /** {@code out[i] = x[i] + table[i % tableSize]} over n floats (biases, position tables); grid-stride. */
  public static final PtxKernel ADD_TABLE = kernel(VISION, "add_table", 256,
      ptr("out"), ptr("x"), ptr("table"), i32("n"), i32("tableSize"));
  /** {@code x = x * sigmoid(1.702 x)} in place over n floats; grid-stride. */
  public static final PtxKernel QUICK_GELU = kernel(VISION, "quick_gelu", 256, ptr("x"), i32("n"));
  /**
   * Unmasked attention of each image's query rows over its key rows, q/k/v strided views of
   * activations; grid (numHeads, numImages * ceil(numQueries / {@value #FULL_ATTENTION_ROWS})).
   */
  public static final PtxKernel FULL_ATTENTION = kernel(VISION, "full_attention", 256,
      ptr("out"), ptr("q"), ptr("k"), ptr("v"), i32("numQueries"), i32("numKeys"), i32("headDim"),
      i32("qImageStride"), i32("qRowStride"), i32("qHeadStride"), i32("kvImageStride"), i32("kvRowStride"),
      i32("kvHeadStride"), f32("scale"));

  /**
   * {@link #FULL_ATTENTION} on tensor cores for the F16 and BF16 towers: q, k, v and the softmax
   * weights rounded to F16, mma.sync products with float32 sums; headDim a multiple of 16, at most
   * {@value #MAX_FULL_ATTENTION_F16_HEAD_DIM}; grid (numHeads, numImages * ceil(numQueries /
   * {@value #FULL_ATTENTION_F16_ROWS})).
   */
  public static final PtxKernel FULL_ATTENTION_F16 = kernel(VISION, "full_attention_f16", 128,
      ptr("out"), ptr("q"), ptr("k"), ptr("v"), i32("numQueries"), i32("numKeys"), i32("headDim"),
      i32("qImageStride"), i32("qRowStride"), i32("qHeadStride"), i32("kvImageStride"), i32("kvRowStride"),
      i32("kvHeadStride"), f32("scale"));

  /** Query rows per block of {@link #FULL_ATTENTION_F16} (FT_ROWS in vision.cu: 4 warps of 16). */
  public static final int FULL_ATTENTION_F16_ROWS = 64;
  /** The largest headDim {@link #FULL_ATTENTION_F16} takes (FT_MAX_DIM in vision.cu). */
  public static final int MAX_FULL_ATTENTION_F16_HEAD_DIM = 64;

  /** Query rows per block of {@link #FULL_ATTENTION} (FA_ROWS in vision.cu: a warp each). */
  public static final int FULL_ATTENTION_ROWS = 8;
  /** The largest headDim {@link #FULL_ATTENTION} takes (FA_MAX_DIM in vision.cu). */
  public static final int MAX_FULL_ATTENTION_HEAD_DIM = 128;

  /** Every kernel, in module order. */
  public static final List<PtxKernel> ALL = List.of(
      EMBEDDING_F16, EMBEDDING_BF16, EMBEDDING_F32, RMS_NORM, ADD_RMS_NORM, ROPE, SILU_MUL, RESIDUAL_ADD,
      GEMV_F16, GEMV_BF16, GEMV_F32, GEMV8_F16, GEMV8_BF16,
      GEMM_F16, GEMM_BF16, GEMM64_F16, GEMM64_BF16, GEMM_SPLIT_SUM,
      KV_APPEND, PAGED_ATTENTION,
      LAYER_NORM, ADD_TABLE, QUICK_GELU, FULL_ATTENTION, FULL_ATTENTION_F16);

  private PtxKernels() {}

  private static PtxKernel gemv(String name) {
    return kernel(GEMV, name, 256, ptr("out"), ptr("w"), ptr("x"), i32("rows"), i32("cols"));
  }

  private static PtxKernel gemv8(String name) {
    return kernel(GEMV, name, 256, ptr("out"), ptr("w"), ptr("x"), i32("rows"), i32("cols"), i32("numTokens"));
  }

  /**
   * A gemm.cu kernel with square tiles of {@code tile}: its dynamic shared memory is {@code stages}
   * stages of a W tile (tile rows of 40 halves) and an x tile (tile tokens of 40 floats), as
   * GemmTiles::SHARED_BYTES in gemm.cu.
   */
  private static PtxKernel gemm(String name, int tile, int blockSize, int stages) {
    int sharedBytes = stages * (2 * tile * 40 + 4 * tile * 40);
    return new PtxKernel(GEMM, name, List.of(ptr("out"), ptr("w"), ptr("x"), i32("rows"), i32("cols"),
        i32("numTokens"), i32("kPerSplit")), blockSize, sharedBytes);
  }

  /** The tile (rows and tokens per block) of a gemm.cu product kernel. */
  public static int gemmTile(PtxKernel kernel) {
    if (kernel.module() != GEMM || kernel == GEMM_SPLIT_SUM) {
      throw new IllegalArgumentException(kernel.name() + " is not a gemm.cu kernel");
    }
    return kernel == GEMM64_F16 || kernel == GEMM64_BF16 ? GEMM64_TILE : GEMM_TILE;
  }

  private static PtxKernel kernel(PtxModule module, String name, int blockSize, Param... params) {
    return new PtxKernel(module, name, List.of(params), blockSize);
  }

  private static Param ptr(String name) {
    return new Param(name, ParamType.POINTER);
  }

  private static Param i32(String name) {
    return new Param(name, ParamType.INT);
  }

  private static Param f32(String name) {
    return new Param(name, ParamType.FLOAT);
  }
}
