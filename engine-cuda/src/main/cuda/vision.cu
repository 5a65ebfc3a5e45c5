// The vision tower's own kernels (spec/MPLUG_OWL2.md §2 and §3; the engine's VisionEncoderLayer and
// VisualAbstractorLayer): LayerNorm with weight and bias, a table added to every row group (biases
// and position tables), QuickGELU, and softmax attention without a mask over rows of activations
// (the ViT's self-attention over one image's tokens, the abstractor's queries over [queries; image]),
// batched over images. Activations are float32 rows; the products are gemv.cu's and gemm.cu's.
#include "owlery_cuda.h"

// Sum over the block (block size a multiple of 32, at most 1024); every thread receives the total.
OWL_INLINE float vision_block_sum(float v, float* scratch /* [32] shared */) {
  int lane = thread_x() & 31;
  int warp = thread_x() >> 5;
  int numWarps = block_dim_x() >> 5;
  v = warp_sum(v);
  if (lane == 0) scratch[warp] = v;
  sync_threads();
  float total = lane < numWarps ? scratch[lane] : 0.f;
  total = warp_sum(total);
  sync_threads(); // scratch is reused by the next sum
  return total;
}

// ---- LayerNorm: out[t, i] = (x[t, i] - mean) / sqrt(var + eps) * weight[i] + bias[i] ----
// mean and the (biased) variance of row t in two passes, as the engine's layerNorm: the variance sums
// (x - mean)^2, never E[x^2] - mean^2. weight and bias float32 [hidden]. Grid: numRows blocks.

OWL_KERNEL layer_norm(u64 out, u64 x, u64 weight, u64 bias, int hidden, float eps) {
  __shared__ float scratch[32];
  int t = block_x();
  const float* row = (const float*) x + (long long) t * hidden;
  float sum = 0.f;
  for (int i = thread_x(); i < hidden; i += block_dim_x()) sum += row[i];
  float mean = div_rn(vision_block_sum(sum, scratch), (float) hidden);
  float squares = 0.f;
  for (int i = thread_x(); i < hidden; i += block_dim_x()) {
    float d = row[i] - mean;
    squares += d * d;
  }
  float variance = div_rn(vision_block_sum(squares, scratch), (float) hidden);
  float scale = div_rn(1.f, sqrt_rn(variance + eps));
  const float* w = (const float*) weight;
  const float* b = (const float*) bias;
  float* dst = (float*) out + (long long) t * hidden;
  for (int i = thread_x(); i < hidden; i += block_dim_x()) dst[i] = (row[i] - mean) * scale * w[i] + b[i];
}

// ---- out[i] = x[i] + table[i % tableSize] over n floats ----
// A bias [cols] added to every row (tableSize = cols), or a position table [rows, cols] added to
// every image's rows (tableSize = rows * cols). out may be x. Grid-stride.

OWL_KERNEL add_table(u64 out, u64 x, u64 table, int n, int tableSize) {
  for (long long i = (long long) block_x() * block_dim_x() + thread_x(); i < n;
       i += (long long) grid_dim_x() * block_dim_x()) {
    ((float*) out)[i] = ((const float*) x)[i] + ((const float*) table)[i % tableSize];
  }
}

// ---- QuickGELU in place: x * sigmoid(1.702 x) (CLIP's activation) ----

OWL_KERNEL quick_gelu(u64 x, int n) {
  for (int i = block_x() * block_dim_x() + thread_x(); i < n; i += grid_dim_x() * block_dim_x()) {
    float v = ((float*) x)[i];
    float sigmoid = div_rn(1.f, 1.f + exp_approx(-(1.702f * v)));
    ((float*) x)[i] = v * sigmoid;
  }
}

// ---- full_attention: every query row sees every key row of its image (no mask) ----
// out[img * numQueries + i, h, :] = sum_j softmax_j(scale * q[img, i, h] . k[img, j, h]) v[img, j, h]
// over the numKeys keys of the image. q, k and v are views into activations: element d of head h of
// row i of image img is at q[img * qImageStride + i * qRowStride + h * qHeadStride + d] (k and v
// share their strides: kvImageStride, kvRowStride, kvHeadStride), so the ViT reads its interleaved
// fused-QKV rows in place and the abstractor its separate q, k and v. out is [numImages * numQueries,
// numHeads * headDim] with numHeads = gridDim.x. headDim <= FA_MAX_DIM.
//
// Grid: (numHeads, numImages * ceil(numQueries / FA_ROWS)); block: 32 * FA_ROWS threads, a warp per
// query row. The block streams its image's keys and values through shared memory in tiles of 32
// (each tile read from global memory once for FA_ROWS query rows); in a tile lane j scores key j,
// and each warp keeps an online softmax (running max m, running sum l of e^(s - m), accumulators of
// e^(s - m) v rescaled when m grows), so no score is held in global memory. Lane l accumulates the
// dimensions d = l + 32 i.

#define FA_ROWS 8
#define FA_TILE 32
#define FA_MAX_DIM 128

OWL_KERNEL full_attention(u64 out, u64 q, u64 k, u64 v, int numQueries, int numKeys, int headDim, int qImageStride,
    int qRowStride, int qHeadStride, int kvImageStride, int kvRowStride, int kvHeadStride, float scale) {
  __shared__ float kTile[FA_TILE][FA_MAX_DIM + 1]; // padded: lane j reads row j without bank conflicts
  __shared__ float vTile[FA_TILE][FA_MAX_DIM];
  __shared__ float qRows[FA_ROWS][FA_MAX_DIM];
  __shared__ float probabilities[FA_ROWS][FA_TILE];

  int h = block_x();
  int numHeads = grid_dim_x();
  int tilesPerImage = (numQueries + FA_ROWS - 1) / FA_ROWS;
  int img = block_y() / tilesPerImage;
  int lane = thread_x() & 31;
  int warp = thread_x() >> 5;
  int i = (block_y() - img * tilesPerImage) * FA_ROWS + warp;
  bool active = i < numQueries; // an inactive warp scores a zero query and writes nothing

  const float* qRow = (const float*) q + (long long) img * qImageStride + (long long) i * qRowStride
      + (long long) h * qHeadStride;
  for (int d = lane; d < headDim; d += 32) qRows[warp][d] = active ? qRow[d] : 0.f;
  long long kvBase = (long long) img * kvImageStride + (long long) h * kvHeadStride;
  const float* keys = (const float*) k + kvBase;
  const float* values = (const float*) v + kvBase;

  float m = -__builtin_inff();
  float l = 0.f;
  float acc[FA_MAX_DIM / 32];
#pragma unroll
  for (int r = 0; r < FA_MAX_DIM / 32; r++) acc[r] = 0.f;

  for (int j0 = 0; j0 < numKeys; j0 += FA_TILE) {
    sync_threads(); // every warp is done with the previous tile
    for (int e = thread_x(); e < FA_TILE * headDim; e += block_dim_x()) {
      int jj = e / headDim;
      int d = e - jj * headDim;
      int j = j0 + jj;
      bool inside = j < numKeys;
      kTile[jj][d] = inside ? keys[(long long) j * kvRowStride + d] : 0.f;
      vTile[jj][d] = inside ? values[(long long) j * kvRowStride + d] : 0.f;
    }
    sync_threads(); // the tile and this warp's query row are in shared memory
    float s = -__builtin_inff();
    if (j0 + lane < numKeys) {
      float dot = 0.f;
      for (int d = 0; d < headDim; d++) dot += qRows[warp][d] * kTile[lane][d];
      s = scale * dot;
    }
    float mNew = __builtin_fmaxf(m, warp_max(s)); // finite: the tile holds at least one key
    float p = exp_approx(s - mNew);               // 0 for a key past numKeys
    float correction = exp_approx(m - mNew);      // e^(-inf) = 0 on the first tile
    l = l * correction + warp_sum(p);
    probabilities[warp][lane] = p;
    sync_threads(); // every lane's p is visible to its warp
    int numInTile = numKeys - j0 < FA_TILE ? numKeys - j0 : FA_TILE;
#pragma unroll
    for (int r = 0; r < FA_MAX_DIM / 32; r++) {
      int d = lane + 32 * r;
      if (d < headDim) {
        float sum = acc[r] * correction;
        for (int jj = 0; jj < numInTile; jj++) sum += probabilities[warp][jj] * vTile[jj][d];
        acc[r] = sum;
      }
    }
    m = mNew;
  }

  if (!active) return;
  float* outRow = (float*) out + ((long long) img * numQueries + i) * numHeads * headDim + (long long) h * headDim;
#pragma unroll
  for (int r = 0; r < FA_MAX_DIM / 32; r++) {
    int d = lane + 32 * r;
    if (d < headDim) outRow[d] = div_rn(acc[r], l);
  }
}

// ---- full_attention_f16: full_attention on tensor cores (F16 and BF16 towers) ----
// The same views, grid rows and result as full_attention, for headDim a multiple of 16 and at most
// FT_MAX_DIM (ViT-L's and the abstractor's 64). q, k and v are rounded to F16 as they are read, as
// the GEMM rounds its x; the scores S = Q K^T and the outputs O = P V are mma.sync.m16n8k16 products
// with float32 accumulators (fragment layouts in gemm.cu), and the softmax weights P are rounded to
// F16 for the second product and summed as rounded, so each output is an exact convex combination of
// the F16 values: P's rounding moves it by about 2^-11 of the values' spread.
//
// Grid: (numHeads, numImages * ceil(numQueries / FT_ROWS)); block: 128 threads, 4 warps of 16 query
// rows each. Keys go through shared memory in tiles of FT_KEYS (K as [key][d], V transposed as
// [d][key], both F16), each warp an online softmax over its rows in registers: lane (g, c) = (lane /
// 4, lane % 4) holds rows g and g + 8 of its 16, the running max per row agreed by the 4 lanes of a
// quad, the running sum kept per lane and summed over the quad at the end.

#define FT_ROWS 64
#define FT_KEYS 32
#define FT_MAX_DIM 64
#define FT_K_PADDED (FT_MAX_DIM + 8) // halves per K row: the 8 rows a fragment reads start 4 banks apart
#define FT_V_PADDED (FT_KEYS + 8)    // halves per transposed V row, likewise

OWL_INLINE u32 vision_pair(const u16* p) { return *(const u32*) p; } // p at an even index: 4-byte aligned

// Two floats as an F16 pair, the first in the low half (the lower K index, as the fragments want).
OWL_INLINE u32 f16_pair(float lo, float hi) { return (u32) f32_to_f16(lo) | ((u32) f32_to_f16(hi) << 16); }

OWL_INLINE float f16_rounded(float x) { return f16_to_f32(f32_to_f16(x)); }

OWL_KERNEL full_attention_f16(u64 out, u64 q, u64 k, u64 v, int numQueries, int numKeys, int headDim,
    int qImageStride, int qRowStride, int qHeadStride, int kvImageStride, int kvRowStride, int kvHeadStride,
    float scale) {
  __shared__ u16 kTile[FT_KEYS][FT_K_PADDED];
  __shared__ u16 vTile[FT_MAX_DIM][FT_V_PADDED];

  int h = block_x();
  int numHeads = grid_dim_x();
  int tilesPerImage = (numQueries + FT_ROWS - 1) / FT_ROWS;
  int img = block_y() / tilesPerImage;
  int lane = thread_x() & 31;
  int warp = thread_x() >> 5;
  int g = lane >> 2;
  int c = lane & 3;
  int row0 = (block_y() - img * tilesPerImage) * FT_ROWS + warp * 16; // this warp's first query row
  int kSteps = headDim >> 4;
  int dTiles = headDim >> 3;

  // Q's rows row0 + g and row0 + g + 8 as A fragments (rows past numQueries are zero)
  const float* qBase = (const float*) q + (long long) img * qImageStride + (long long) h * qHeadStride;
  const float* qRow0 = qBase + (long long) (row0 + g) * qRowStride;
  const float* qRow1 = qRow0 + 8LL * qRowStride;
  bool inside0 = row0 + g < numQueries;
  bool inside1 = row0 + g + 8 < numQueries;
  u32 qa[FT_MAX_DIM / 16][4];
#pragma unroll
  for (int kk = 0; kk < FT_MAX_DIM / 16; kk++) {
    int d = kk * 16 + 2 * c;
    bool used = kk < kSteps;
    qa[kk][0] = used && inside0 ? f16_pair(qRow0[d], qRow0[d + 1]) : 0u;
    qa[kk][1] = used && inside1 ? f16_pair(qRow1[d], qRow1[d + 1]) : 0u;
    qa[kk][2] = used && inside0 ? f16_pair(qRow0[d + 8], qRow0[d + 9]) : 0u;
    qa[kk][3] = used && inside1 ? f16_pair(qRow1[d + 8], qRow1[d + 9]) : 0u;
  }

  float o[FT_MAX_DIM / 8][4];
#pragma unroll
  for (int t = 0; t < FT_MAX_DIM / 8; t++) o[t][0] = o[t][1] = o[t][2] = o[t][3] = 0.f;
  float m0 = -__builtin_inff(), m1 = -__builtin_inff(); // running max of rows g and g + 8
  float l0 = 0.f, l1 = 0.f;                               // this lane's share of their running sums

  long long kvBase = (long long) img * kvImageStride + (long long) h * kvHeadStride;
  const float* keys = (const float*) k + kvBase;
  const float* values = (const float*) v + kvBase;
  for (int j0 = 0; j0 < numKeys; j0 += FT_KEYS) {
    sync_threads(); // every warp is done with the previous tile
    for (int e = thread_x(); e < FT_KEYS * headDim; e += block_dim_x()) {
      int jj = e / headDim;
      int d = e - jj * headDim;
      int j = j0 + jj;
      bool inside = j < numKeys;
      kTile[jj][d] = f32_to_f16(inside ? keys[(long long) j * kvRowStride + d] : 0.f);
      vTile[d][jj] = f32_to_f16(inside ? values[(long long) j * kvRowStride + d] : 0.f);
    }
    sync_threads();

    // S = Q K^T: 16 rows x FT_KEYS keys, FT_KEYS / 8 n8 tiles; B[k = d][n = key] = K[key][d]
    float s[FT_KEYS / 8][4];
#pragma unroll
    for (int n = 0; n < FT_KEYS / 8; n++) {
      s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.f;
#pragma unroll
      for (int kk = 0; kk < FT_MAX_DIM / 16; kk++) {
        if (kk < kSteps) {
          u32 b[2] = {vision_pair(&kTile[n * 8 + g][kk * 16 + 2 * c]), vision_pair(&kTile[n * 8 + g][kk * 16 + 2 * c + 8])};
          mma_f16(s[n], qa[kk], b);
        }
      }
    }
    // scale, mask the keys past numKeys, and each row's new max over the quad
    float max0 = m0, max1 = m1;
#pragma unroll
    for (int n = 0; n < FT_KEYS / 8; n++) {
#pragma unroll
      for (int i = 0; i < 2; i++) {
        bool valid = j0 + n * 8 + 2 * c + i < numKeys;
        s[n][i] = valid ? scale * s[n][i] : -__builtin_inff();
        s[n][2 + i] = valid ? scale * s[n][2 + i] : -__builtin_inff();
        max0 = __builtin_fmaxf(max0, s[n][i]);
        max1 = __builtin_fmaxf(max1, s[n][2 + i]);
      }
    }
    max0 = __builtin_fmaxf(max0, shfl_xor(max0, 1));
    max0 = __builtin_fmaxf(max0, shfl_xor(max0, 2));
    max1 = __builtin_fmaxf(max1, shfl_xor(max1, 1));
    max1 = __builtin_fmaxf(max1, shfl_xor(max1, 2)); // finite: key j0 is in every row's tile
    float correction0 = exp_approx(m0 - max0);       // e^(-inf) = 0 on the first tile
    float correction1 = exp_approx(m1 - max1);
    m0 = max0;
    m1 = max1;
    l0 *= correction0;
    l1 *= correction1;
#pragma unroll
    for (int n = 0; n < FT_KEYS / 8; n++) {
#pragma unroll
      for (int i = 0; i < 2; i++) {
        s[n][i] = f16_rounded(exp_approx(s[n][i] - m0)); // as the product will read it
        s[n][2 + i] = f16_rounded(exp_approx(s[n][2 + i] - m1));
        l0 += s[n][i];
        l1 += s[n][2 + i];
      }
    }
#pragma unroll
    for (int t = 0; t < FT_MAX_DIM / 8; t++) {
      o[t][0] *= correction0;
      o[t][1] *= correction0;
      o[t][2] *= correction1;
      o[t][3] *= correction1;
    }
    // O += P V: P's accumulator tiles 2t and 2t + 1 are the A fragment of keys 16t..16t+15;
    // B[k = key][n = d] = V[key][d], read from the transposed tile
#pragma unroll
    for (int t = 0; t < FT_KEYS / 16; t++) {
      u32 pa[4] = {f16_pair(s[2 * t][0], s[2 * t][1]), f16_pair(s[2 * t][2], s[2 * t][3]),
          f16_pair(s[2 * t + 1][0], s[2 * t + 1][1]), f16_pair(s[2 * t + 1][2], s[2 * t + 1][3])};
#pragma unroll
      for (int dt = 0; dt < FT_MAX_DIM / 8; dt++) {
        if (dt < dTiles) {
          u32 b[2] = {vision_pair(&vTile[dt * 8 + g][t * 16 + 2 * c]), vision_pair(&vTile[dt * 8 + g][t * 16 + 2 * c + 8])};
          mma_f16(o[dt], pa, b);
        }
      }
    }
  }

  l0 += shfl_xor(l0, 1);
  l0 += shfl_xor(l0, 2);
  l1 += shfl_xor(l1, 1);
  l1 += shfl_xor(l1, 2);
  long long width = (long long) numHeads * headDim;
  float* out0 = (float*) out + ((long long) img * numQueries + row0 + g) * width + (long long) h * headDim;
  float* out1 = out0 + 8 * width;
#pragma unroll
  for (int dt = 0; dt < FT_MAX_DIM / 8; dt++) {
    int d = dt * 8 + 2 * c;
    if (dt < dTiles) {
      if (inside0) {
        out0[d] = div_rn(o[dt][0], l0);
        out0[d + 1] = div_rn(o[dt][1], l0);
      }
      if (inside1) {
        out1[d] = div_rn(o[dt][2], l1);
        out1[d + 1] = div_rn(o[dt][3], l1);
      }
    }
  }
}
