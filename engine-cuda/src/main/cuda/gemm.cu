// Tensor-core matrix products for prefill and batched decode: out[t, r] = sum_c W[r, c] * x[t, c],
// W [rows, cols] row-major in F16 or BF16, x [numTokens, cols] and out [numTokens, rows] float32.
// x is rounded to W's 16-bit type as the warps read it from shared memory (what a half-precision
// serving engine computes); products and sums are float32 (mma.sync ... .f32 accumulators). F32
// weights have no tensor-core path: gemv_f32 serves them (the test fixtures only).
//
// mma.sync.aligned.m16n8k16.row.col computes D[16x8] = A[16x16] B[16x8] + C. Here the M dimension is
// W's rows, N the tokens and K the columns: A = a 16x16 tile of W (row-major, K contiguous) and
// B[k][n] = x[n][k], a column-major B, so both operands are read with K contiguous.
//
// Two tile shapes, one template (GemmTiles):
//   gemm_*    a block computes 128 rows x 128 tokens with 8 warps of 64 x 32, 3 stages in flight;
//             for prefill and vision passes, where the product is bound by the tensor cores.
//   gemm64_*  64 rows x 64 tokens with 4 warps of 32 x 32, 4 stages in flight; for batched decode,
//             where it is bound by reading W: twice the blocks of gemm_* and more bytes in flight each.
// K advances 32 columns per stage. Stages move from global to shared memory with cp.async (the
// copy engine fills stage k + STAGES - 1 while the warps multiply stage k), x as float32, converted
// when a warp builds its B fragments. The shared memory is dynamic (over the static 48 KiB):
// PtxKernels gives its size, which the launch passes.
//
// Split K: a product with fewer tiles than the GPU has room for blocks (a decode batch's 4,096-row
// product has 64 tiles of 64 x 64 for 132 SMs) is cut along K into splits of kPerSplit columns (a
// multiple of TILE_K): block y = split * ceil(numTokens / BN) + token tile, and split s writes its
// partial sums to out + s * numTokens * rows; gemm_split_sum then adds the splits in order, so the
// result does not depend on the blocks' timing. kPerSplit >= cols is one split, straight into out.
// Grid: (ceil(rows / BM), ceil(numTokens / BN) * ceil(cols / kPerSplit)).
// Tiles hanging over rows, tokens or cols are zero-filled, so any size is exact; an unaligned
// chunk (odd cols, an offset x) is loaded element by element instead of by cp.async.
#include "owlery_cuda.h"

#define TILE_K 32
// Shared rows: W's padded by 8 halves to 40 (80 bytes: the 8 rows a fragment load touches start at
// banks 0, 20, 8, 28, 16, 4, 24, 12 and the 4 lanes of a row add 0..3, so the 32 lanes hit 32 different
// banks); x's padded by 8 floats to 40 (160 bytes: each half-warp's 8-byte pair reads cover the 32 banks
// once). Both keep every 16-byte chunk aligned for cp.async.
#define W_STRIDE 40
#define X_STRIDE 40

// Fragment register layout (PTX ISA, "Matrix Fragments for mma.m16n8k16" with .f16/.bf16), with
// g = lane / 4 and c = lane % 4; each 32-bit register holds two consecutive K elements, the lower
// K index in the low half:
//   A: a0 = (row g,     k 2c..2c+1)  a1 = (row g + 8, k 2c..2c+1)
//      a2 = (row g,     k 2c+8..+9)  a3 = (row g + 8, k 2c+8..+9)
//   B: b0 = (k 2c..2c+1, col g)      b1 = (k 2c+8..+9, col g)
//   C: c0, c1 = (row g, cols 2c, 2c+1)   c2, c3 = (row g + 8, cols 2c, 2c+1)
// mma_f16 and mma_bf16 (owlery_cuda.h) wrap the instruction.

OWL_INLINE u32 shared_pair(const u16* p) { return *(const u32*) p; } // p at an even K index: 4-byte aligned

OWL_DYNAMIC_SHARED;

template <int BM_, int BN_, int WM_, int WN_, int STAGES_>
struct GemmTiles {
  static constexpr int BM = BM_, BN = BN_, WM = WM_, WN = WN_, STAGES = STAGES_;
  static constexpr int WARPS_N = BN / WN;
  static constexpr int THREADS = 32 * (BM / WM) * WARPS_N;
  static constexpr int MT = WM / 16; // m16 tiles per warp
  static constexpr int NT = WN / 8;  // n8 tiles per warp
  static constexpr int W_CHUNKS = BM * TILE_K / 8 / THREADS; // 16-byte chunks of W per thread and stage
  static constexpr int X_CHUNKS = BN * TILE_K / 4 / THREADS; // 16-byte chunks of x per thread and stage
  static_assert(W_CHUNKS * THREADS * 8 == BM * TILE_K && X_CHUNKS * THREADS * 4 == BN * TILE_K, "whole chunks");
  static constexpr int W_STAGE = BM * W_STRIDE; // halves
  static constexpr int X_STAGE = BN * X_STRIDE; // floats
  // W's stages, then x's (PtxKernels.GEMM_SHARED_BYTES and GEMM64_SHARED_BYTES must equal this).
  static constexpr int SHARED_BYTES = STAGES * (2 * W_STAGE + 4 * X_STAGE);
};

// Queues the copies of the K tile at k0 into stage buffers wStage and xStage: W as 8-half chunks (row
// id / 4, columns 8 * (id % 4) ..), x as 4-float chunks (token id / 8, columns 4 * (id % 8) ..). A whole,
// aligned chunk is one cp.async; an edge or unaligned one is read element by element (zeros outside)
// and stored at once, which the barrier before the stage is read makes visible like the copies.
// cols is the row stride of W and x; columns from kEnd on read as zeros (the split's end).
template <class T>
OWL_INLINE void load_stage(u16* wStage, float* xStage, const u16* w, const float* x, int rows, int cols, int kEnd,
    int numTokens, int row0, int tok0, int k0, int tid) {
#pragma unroll
  for (int i = 0; i < T::W_CHUNKS; i++) {
    int id = tid + T::THREADS * i;
    int r = id >> 2;
    int c = (id & 3) * 8;
    int gr = row0 + r;
    int gc = k0 + c;
    const u16* src = w + (long long) gr * cols + gc;
    u16* dst = wStage + r * W_STRIDE + c;
    if (gr < rows && gc + 8 <= kEnd && aligned16(src)) {
      cp_async16(dst, src);
    } else {
#pragma unroll
      for (int j = 0; j < 8; j++) dst[j] = gr < rows && gc + j < kEnd ? src[j] : (u16) 0;
    }
  }
#pragma unroll
  for (int i = 0; i < T::X_CHUNKS; i++) {
    int id = tid + T::THREADS * i;
    int t = id >> 3;
    int c = (id & 7) * 4;
    int gt = tok0 + t;
    int gc = k0 + c;
    const float* src = x + (long long) gt * cols + gc;
    float* dst = xStage + t * X_STRIDE + c;
    if (gt < numTokens && gc + 4 <= kEnd && aligned16(src)) {
      cp_async16(dst, src);
    } else {
#pragma unroll
      for (int j = 0; j < 4; j++) dst[j] = gt < numTokens && gc + j < kEnd ? src[j] : 0.f;
    }
  }
}

template <class T, u16 (*narrow)(float), void (*mma)(float*, const u32*, const u32*)>
OWL_INLINE void gemm_tiles(u64 outPtr, u64 wPtr, u64 xPtr, int rows, int cols, int numTokens, int kPerSplit) {
  constexpr int BM = T::BM, BN = T::BN, WM = T::WM, WN = T::WN, STAGES = T::STAGES;
  u16* wSmem = (u16*) owl_dynamic_shared;
  float* xSmem = (float*) (owl_dynamic_shared + 2 * STAGES * T::W_STAGE);
  const u16* w = (const u16*) wPtr;
  const float* x = (const float*) xPtr;
  int tid = thread_x();
  int lane = tid & 31;
  int warp = tid >> 5;
  int g = lane >> 2;
  int c = lane & 3;
  int warpRow = (warp / T::WARPS_N) * WM; // this warp's WM x WN corner of the block tile
  int warpTok = (warp % T::WARPS_N) * WN;
  int tokenTiles = (numTokens + BN - 1) / BN;
  int split = block_y() / tokenTiles;
  int row0 = block_x() * BM;
  int tok0 = (block_y() - split * tokenTiles) * BN;
  int kBegin = split * kPerSplit;
  int kEnd = kPerSplit < cols - kBegin ? kBegin + kPerSplit : cols;

  float acc[T::MT][T::NT][4];
#pragma unroll
  for (int mi = 0; mi < T::MT; mi++)
#pragma unroll
    for (int ni = 0; ni < T::NT; ni++)
#pragma unroll
      for (int i = 0; i < 4; i++) acc[mi][ni][i] = 0.f;

  int numK = (kEnd - kBegin + TILE_K - 1) / TILE_K;
#pragma unroll
  for (int s = 0; s < STAGES - 1; s++) {
    if (s < numK) load_stage<T>(wSmem + s * T::W_STAGE, xSmem + s * T::X_STAGE, w, x, rows, cols, kEnd, numTokens, row0,
        tok0, kBegin + s * TILE_K, tid);
    cp_async_commit(); // a group per stage, empty or not, so that the counts below hold
  }
  for (int kt = 0; kt < numK; kt++) {
    cp_async_wait<STAGES - 2>(); // this thread's copies of tile kt have landed
    sync_threads();              // everyone's have, and every warp is done with tile kt - 1's stage
    int next = kt + STAGES - 1;  // into the stage tile kt - 1 used
    if (next < numK) {
      int s = next % STAGES;
      load_stage<T>(wSmem + s * T::W_STAGE, xSmem + s * T::X_STAGE, w, x, rows, cols, kEnd, numTokens, row0, tok0,
          kBegin + next * TILE_K, tid);
    }
    cp_async_commit();

    const u16* wTile = wSmem + (kt % STAGES) * T::W_STAGE;
    const float* xTile = xSmem + (kt % STAGES) * T::X_STAGE;
#pragma unroll
    for (int kk = 0; kk < TILE_K; kk += 16) {
      u32 a[T::MT][4];
      u32 b[T::NT][2];
#pragma unroll
      for (int mi = 0; mi < T::MT; mi++) {
        const u16* r = wTile + (warpRow + mi * 16 + g) * W_STRIDE + kk + 2 * c;
        a[mi][0] = shared_pair(r);
        a[mi][1] = shared_pair(r + 8 * W_STRIDE);
        a[mi][2] = shared_pair(r + 8);
        a[mi][3] = shared_pair(r + 8 * W_STRIDE + 8);
      }
#pragma unroll
      for (int ni = 0; ni < T::NT; ni++) {
        const float* n = xTile + (warpTok + ni * 8 + g) * X_STRIDE + kk + 2 * c;
        b[ni][0] = (u32) narrow(n[0]) | ((u32) narrow(n[1]) << 16);
        b[ni][1] = (u32) narrow(n[8]) | ((u32) narrow(n[9]) << 16);
      }
#pragma unroll
      for (int mi = 0; mi < T::MT; mi++)
#pragma unroll
        for (int ni = 0; ni < T::NT; ni++) mma(acc[mi][ni], a[mi], b[ni]);
    }
  }
  cp_async_wait<0>(); // no copy outlives the block (the groups left are empty)

  // acc[mi][ni][i] is out[token, row] for row = warpRow + 16 mi + g (+ 8 for i >= 2) and
  // token = warpTok + 8 ni + 2 c + (i & 1), relative to the block tile's corner.
  float* out = (float*) outPtr + (long long) split * numTokens * rows;
#pragma unroll
  for (int mi = 0; mi < T::MT; mi++)
#pragma unroll
    for (int ni = 0; ni < T::NT; ni++)
#pragma unroll
      for (int i = 0; i < 4; i++) {
        int r = row0 + warpRow + mi * 16 + g + (i >= 2 ? 8 : 0);
        int t = tok0 + warpTok + ni * 8 + 2 * c + (i & 1);
        if (r < rows && t < numTokens) out[(long long) t * rows + r] = acc[mi][ni][i];
      }
}

// MIN_BLOCKS resident per SM, as many as the shared memory allows (228 KiB): ptxas keeps gemm_* at
// 128 registers (256 threads x 2 blocks = the SM's 65,536) and gemm64_* at 170 (128 x 3).
#define GEMM_KERNEL(name, narrow, mma, BM, BN, WM, WN, STAGES, MIN_BLOCKS)                                      \
  OWL_KERNEL OWL_LAUNCH_BOUNDS((GemmTiles<BM, BN, WM, WN, STAGES>::THREADS), MIN_BLOCKS)                        \
  name(u64 out, u64 w, u64 x, int rows, int cols, int numTokens, int kPerSplit) {                              \
    gemm_tiles<GemmTiles<BM, BN, WM, WN, STAGES>, narrow, mma>(out, w, x, rows, cols, numTokens, kPerSplit);    \
  }

GEMM_KERNEL(gemm_f16, f32_to_f16, mma_f16, 128, 128, 64, 32, 3, 2)
GEMM_KERNEL(gemm_bf16, f32_to_bf16, mma_bf16, 128, 128, 64, 32, 3, 2)
GEMM_KERNEL(gemm64_f16, f32_to_f16, mma_f16, 64, 64, 32, 32, 4, 3)
GEMM_KERNEL(gemm64_bf16, f32_to_bf16, mma_bf16, 64, 64, 32, 32, 4, 3)

// out[i] = partials[i] + partials[n + i] + ... + partials[(splits - 1) n + i], in that order, over n
// floats (a split GEMM's outputs); grid-stride.
OWL_KERNEL gemm_split_sum(u64 outPtr, u64 partialsPtr, int n, int splits) {
  float* out = (float*) outPtr;
  const float* partials = (const float*) partialsPtr;
  for (int i = block_x() * block_dim_x() + thread_x(); i < n; i += grid_dim_x() * block_dim_x()) {
    float sum = partials[i];
    for (int s = 1; s < splits; s++) sum += partials[(long long) s * n + i];
    out[i] = sum;
  }
}
