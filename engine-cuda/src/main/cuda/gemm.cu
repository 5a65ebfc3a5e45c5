// Tensor-core matrix products for prefill and batched decode: out[t, r] = sum_c W[r, c] * x[t, c],
// W [rows, cols] row-major in F16 or BF16, x [numTokens, cols] and out [numTokens, rows] float32.
// x is rounded to W's 16-bit type as it enters shared memory (what a half-precision serving engine
// computes); products and sums are float32 (mma.sync ... .f32 accumulators). F32 weights have no
// tensor-core path: gemv_f32 serves them (the test fixtures only).
//
// mma.sync.aligned.m16n8k16.row.col computes D[16x8] = A[16x16] B[16x8] + C. Here the M dimension is
// W's rows, N the tokens and K the columns: A = a 16x16 tile of W (row-major, K contiguous) and
// B[k][n] = x[n][k], a column-major B, so both operands are read with K contiguous.
//
// A block computes a 64 (rows) x 64 (tokens) tile of out with 4 warps in a 2 x 2 arrangement, each
// warp 32 x 32 = 2 m16 tiles x 4 n8 tiles (32 float accumulators per lane). K advances 32 columns
// per shared-memory tile; the next tile is loaded into registers while the current one is multiplied
// (TileShare). Grid: (ceil(rows / 64), ceil(numTokens / 64)); block: 128 threads.
// Tiles hanging over rows, tokens or cols are zero-filled, so any size is exact.
#include "owlery_cuda.h"

#define TILE_M 64
#define TILE_N 64
#define TILE_K 32
// Shared rows are padded by 8 halves (16 bytes) to 40 halves = 20 words: the 8 rows a fragment load
// touches start at banks 0, 20, 8, 28, 16, 4, 24, 12 and the 4 lanes of a row add 0..3, so the 32
// lanes hit 32 different banks; 80-byte rows keep every 8-half chunk 16-byte aligned.
#define TILE_K_PADDED 40

// Fragment register layout (PTX ISA, "Matrix Fragments for mma.m16n8k16" with .f16/.bf16), with
// g = lane / 4 and c = lane % 4; each 32-bit register holds two consecutive K elements, the lower
// K index in the low half:
//   A: a0 = (row g,     k 2c..2c+1)  a1 = (row g + 8, k 2c..2c+1)
//      a2 = (row g,     k 2c+8..+9)  a3 = (row g + 8, k 2c+8..+9)
//   B: b0 = (k 2c..2c+1, col g)      b1 = (k 2c+8..+9, col g)
//   C: c0, c1 = (row g, cols 2c, 2c+1)   c2, c3 = (row g + 8, cols 2c, 2c+1)
// mma_f16 and mma_bf16 (owlery_cuda.h) wrap the instruction.

OWL_INLINE u32 shared_pair(const u16* p) { return *(const u32*) p; } // p at an even K index: 4-byte aligned

// The share of one K tile a thread moves from global to shared memory: two 8-half chunks of W and
// four 4-float chunks of x, x already rounded to 16 bits (two K pairs per chunk). The next tile's
// share is loaded into these registers while the warps multiply the current tile, and stored to
// shared memory after, so global-memory latency overlaps the tensor-core work.
struct TileShare {
  u32x4 w[2];
  u32 x[4][2];
};

// W tile: 64 rows x 4 chunks of 8 halves = 256 chunks, 2 per thread; chunk id -> (row id / 4, columns
// 8 * (id % 4) ..). x tile: 64 tokens x 8 chunks of 4 floats = 512 chunks, 4 per thread; chunk id ->
// (token id / 8, columns 4 * (id % 8) ..). A whole, aligned chunk is one 16-byte load; an edge chunk
// (past rows, tokens or cols) or an unaligned one (odd cols) goes element by element, zeros outside.
template <u16 (*narrow)(float)>
OWL_INLINE void load_share(TileShare& share, const u16* w, const float* x, int rows, int cols, int numTokens, int row0,
    int tok0, int k0, int tid) {
#pragma unroll
  for (int i = 0; i < 2; i++) {
    int id = tid + 128 * i;
    int gr = row0 + (id >> 2);
    int gc = k0 + (id & 3) * 8;
    const u16* src = w + (long long) gr * cols + gc;
    if (gr < rows && gc + 8 <= cols && aligned16(src)) {
      share.w[i] = load16(src);
    } else {
      u16 e[8];
#pragma unroll
      for (int j = 0; j < 8; j++) e[j] = gr < rows && gc + j < cols ? src[j] : (u16) 0;
      share.w[i] = u32x4{e[0] | ((u32) e[1] << 16), e[2] | ((u32) e[3] << 16), e[4] | ((u32) e[5] << 16),
          e[6] | ((u32) e[7] << 16)};
    }
  }
#pragma unroll
  for (int i = 0; i < 4; i++) {
    int id = tid + 128 * i;
    int gt = tok0 + (id >> 3);
    int gc = k0 + (id & 7) * 4;
    const float* src = x + (long long) gt * cols + gc;
    float v[4];
    if (gt < numTokens && gc + 4 <= cols && aligned16(src)) {
      owl_float4 f = load16f(src);
      v[0] = f.x;
      v[1] = f.y;
      v[2] = f.z;
      v[3] = f.w;
    } else {
#pragma unroll
      for (int j = 0; j < 4; j++) v[j] = gt < numTokens && gc + j < cols ? src[j] : 0.f;
    }
    share.x[i][0] = (u32) narrow(v[0]) | ((u32) narrow(v[1]) << 16);
    share.x[i][1] = (u32) narrow(v[2]) | ((u32) narrow(v[3]) << 16);
  }
}

OWL_INLINE void store_share(const TileShare& share, u16 (*wTile)[TILE_K_PADDED], u16 (*xTile)[TILE_K_PADDED], int tid) {
#pragma unroll
  for (int i = 0; i < 2; i++) {
    int id = tid + 128 * i;
    *(u32x4*) &wTile[id >> 2][(id & 3) * 8] = share.w[i]; // 80-byte rows, 16-byte chunks: aligned
  }
#pragma unroll
  for (int i = 0; i < 4; i++) {
    int id = tid + 128 * i;
    u32* dst = (u32*) &xTile[id >> 3][(id & 7) * 4];
    dst[0] = share.x[i][0];
    dst[1] = share.x[i][1];
  }
}

template <u16 (*narrow)(float), void (*mma)(float*, const u32*, const u32*)>
OWL_INLINE void gemm16(u64 outPtr, u64 wPtr, u64 xPtr, int rows, int cols, int numTokens) {
  __shared__ __attribute__((aligned(16))) u16 wTile[TILE_M][TILE_K_PADDED];
  __shared__ __attribute__((aligned(16))) u16 xTile[TILE_N][TILE_K_PADDED];

  const u16* w = (const u16*) wPtr;
  const float* x = (const float*) xPtr;
  int tid = thread_x();
  int lane = tid & 31;
  int warp = tid >> 5;
  int g = lane >> 2;
  int c = lane & 3;
  int warpRow = (warp >> 1) * 32; // this warp's 32 x 32 corner of the block tile
  int warpTok = (warp & 1) * 32;
  int row0 = block_x() * TILE_M;
  int tok0 = block_y() * TILE_N;

  float acc[2][4][4];
#pragma unroll
  for (int mi = 0; mi < 2; mi++)
#pragma unroll
    for (int ni = 0; ni < 4; ni++)
#pragma unroll
      for (int i = 0; i < 4; i++) acc[mi][ni][i] = 0.f;

  TileShare share;
  load_share<narrow>(share, w, x, rows, cols, numTokens, row0, tok0, 0, tid);
  store_share(share, wTile, xTile, tid);
  sync_threads(); // the first tiles are complete

  for (int k0 = 0; k0 < cols; k0 += TILE_K) {
    bool more = k0 + TILE_K < cols; // the same for the whole block
    if (more) load_share<narrow>(share, w, x, rows, cols, numTokens, row0, tok0, k0 + TILE_K, tid);

#pragma unroll
    for (int kk = 0; kk < TILE_K; kk += 16) {
      u32 a[2][4];
      u32 b[4][2];
#pragma unroll
      for (int mi = 0; mi < 2; mi++) {
        int r = warpRow + mi * 16 + g;
        a[mi][0] = shared_pair(&wTile[r][kk + 2 * c]);
        a[mi][1] = shared_pair(&wTile[r + 8][kk + 2 * c]);
        a[mi][2] = shared_pair(&wTile[r][kk + 2 * c + 8]);
        a[mi][3] = shared_pair(&wTile[r + 8][kk + 2 * c + 8]);
      }
#pragma unroll
      for (int ni = 0; ni < 4; ni++) {
        int n = warpTok + ni * 8 + g;
        b[ni][0] = shared_pair(&xTile[n][kk + 2 * c]);
        b[ni][1] = shared_pair(&xTile[n][kk + 2 * c + 8]);
      }
#pragma unroll
      for (int mi = 0; mi < 2; mi++)
#pragma unroll
        for (int ni = 0; ni < 4; ni++) mma(acc[mi][ni], a[mi], b[ni]);
    }
    sync_threads(); // every warp is done reading the tiles
    if (more) {
      store_share(share, wTile, xTile, tid);
      sync_threads(); // the next tiles are complete
    }
  }

  // acc[mi][ni][i] is out[token, row] for row = warpRow + 16 mi + g (+ 8 for i >= 2) and
  // token = warpTok + 8 ni + 2 c + (i & 1), relative to the block tile's corner.
  float* out = (float*) outPtr;
#pragma unroll
  for (int mi = 0; mi < 2; mi++)
#pragma unroll
    for (int ni = 0; ni < 4; ni++)
#pragma unroll
      for (int i = 0; i < 4; i++) {
        int r = row0 + warpRow + mi * 16 + g + (i >= 2 ? 8 : 0);
        int t = tok0 + warpTok + ni * 8 + 2 * c + (i & 1);
        if (r < rows && t < numTokens) out[(long long) t * rows + r] = acc[mi][ni][i];
      }
}

OWL_KERNEL gemm_f16(u64 out, u64 w, u64 x, int rows, int cols, int numTokens) {
  gemm16<f32_to_f16, mma_f16>(out, w, x, rows, cols, numTokens);
}

OWL_KERNEL gemm_bf16(u64 out, u64 w, u64 x, int rows, int cols, int numTokens) {
  gemm16<f32_to_bf16, mma_bf16>(out, w, x, rows, cols, numTokens);
}
