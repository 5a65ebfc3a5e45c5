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
