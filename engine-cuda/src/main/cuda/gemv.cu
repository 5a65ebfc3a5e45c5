// Matrix-vector products for decode: out[t, r] = sum_c W[r, c] * x[t, c], W [rows, cols] row-major
// in F16, BF16 or F32, x and out float32 ([numTokens, cols] and [numTokens, rows]), accumulated in
// float32 (Kernels.matmul's contract). The lm_head's vocabulary slice is this product on its rows.
//
// Decode is bound by reading W once, so each warp owns one output row: its 32 lanes stream the row
// with 16-byte loads (8 halves or 4 floats per lane per load, consecutive lanes on consecutive
// 16 bytes, so a warp reads 512 contiguous bytes per step) and the partial sums meet by warp shuffle.
// Grid: (ceil(rows / warpsPerBlock), numTokens); block: warpsPerBlock * 32 threads (256 is usual).
//
// gemv8_*: the same product for a few tokens (batched decode of up to a few dozen sequences, where a
// 64-token GEMM tile would leave most SMs idle): each warp takes its row for 8 tokens at once, so the
// row is read from memory once per 8 tokens instead of once per token. Grid: (ceil(rows /
// warpsPerBlock), ceil(numTokens / 8)).
//
// A row whose start (or x's) is not 16-byte aligned, as when cols is not a multiple of 8 (F16,
// BF16) or 4 (F32), is read element by element; so are the columns past the last whole 16 bytes.
#include "owlery_cuda.h"

// The sum of 8 products of a 16-byte chunk of 16-bit weights with 8 floats of x.
template <float (*widen)(u16)>
OWL_INLINE float dot8(u32x4 w, const float* x) {
  owl_float4 a = load16f(x);
  owl_float4 b = load16f(x + 4);
  float s = widen(low16(w.x)) * a.x;
  s += widen(high16(w.x)) * a.y;
  s += widen(low16(w.y)) * a.z;
  s += widen(high16(w.y)) * a.w;
  s += widen(low16(w.z)) * b.x;
  s += widen(high16(w.z)) * b.y;
  s += widen(low16(w.w)) * b.z;
  s += widen(high16(w.w)) * b.w;
  return s;
}

template <float (*widen)(u16)>
OWL_INLINE void gemv16(u64 outPtr, u64 wPtr, u64 xPtr, int rows, int cols) {
  int lane = thread_x() & 31;
  int r = block_x() * (block_dim_x() >> 5) + (thread_x() >> 5);
  if (r >= rows) return; // the whole warp leaves together: no shuffle misses a lane
  int t = block_y();
  const u16* w = (const u16*) wPtr + (long long) r * cols;
  const float* x = (const float*) xPtr + (long long) t * cols;
  float sum = 0.f;
  // [0, vectorEnd): whole 16-byte chunks, chunk k at columns [8k, 8k + 8), lane l takes k = l, l + 32, ...
  int vectorEnd = aligned16(w) && aligned16(x) ? cols & ~7 : 0;
#pragma unroll 4
  for (int c = lane * 8; c < vectorEnd; c += 32 * 8) sum += dot8<widen>(load16(w + c), x + c);
  for (int c = vectorEnd + lane; c < cols; c += 32) sum += widen(w[c]) * x[c];
  sum = warp_sum(sum);
  if (lane == 0) ((float*) outPtr)[(long long) t * rows + r] = sum;
}

OWL_KERNEL gemv_f16(u64 out, u64 w, u64 x, int rows, int cols) { gemv16<f16_to_f32>(out, w, x, rows, cols); }

OWL_KERNEL gemv_bf16(u64 out, u64 w, u64 x, int rows, int cols) { gemv16<bf16_to_f32>(out, w, x, rows, cols); }

// ---- 8 tokens per warp ----

#define GEMV_TOKENS 8

template <float (*widen)(u16)>
OWL_INLINE void gemv16_tokens(u64 outPtr, u64 wPtr, u64 xPtr, int rows, int cols, int numTokens) {
  int lane = thread_x() & 31;
  int r = block_x() * (block_dim_x() >> 5) + (thread_x() >> 5);
  if (r >= rows) return;
  int t0 = block_y() * GEMV_TOKENS;
  int n = numTokens - t0 < GEMV_TOKENS ? numTokens - t0 : GEMV_TOKENS; // tokens of this block, 1..8
  const u16* w = (const u16*) wPtr + (long long) r * cols;
  const float* x = (const float*) xPtr + (long long) t0 * cols; // token k's row at x + k * cols
  float sum[GEMV_TOKENS];
#pragma unroll
  for (int k = 0; k < GEMV_TOKENS; k++) sum[k] = 0.f;
  // Every token's row is 16-byte aligned when the first is and a row is a whole number of 16 bytes.
  int vectorEnd = aligned16(w) && aligned16(x) && (cols & 3) == 0 ? cols & ~7 : 0;
  for (int c = lane * 8; c < vectorEnd; c += 32 * 8) {
    u32x4 chunk = load16(w + c);
#pragma unroll
    for (int k = 0; k < GEMV_TOKENS; k++) {
      if (k < n) sum[k] += dot8<widen>(chunk, x + (long long) k * cols + c);
    }
  }
  for (int c = vectorEnd + lane; c < cols; c += 32) {
    float wc = widen(w[c]);
#pragma unroll
    for (int k = 0; k < GEMV_TOKENS; k++) {
      if (k < n) sum[k] += wc * x[(long long) k * cols + c];
    }
  }
  float* out = (float*) outPtr;
#pragma unroll
  for (int k = 0; k < GEMV_TOKENS; k++) {
    if (k < n) { // n is the same for the whole warp: every lane takes part in the shuffles
      float total = warp_sum(sum[k]);
      if (lane == 0) out[(long long) (t0 + k) * rows + r] = total;
    }
  }
}

OWL_KERNEL gemv8_f16(u64 out, u64 w, u64 x, int rows, int cols, int numTokens) {
  gemv16_tokens<f16_to_f32>(out, w, x, rows, cols, numTokens);
}

OWL_KERNEL gemv8_bf16(u64 out, u64 w, u64 x, int rows, int cols, int numTokens) {
  gemv16_tokens<bf16_to_f32>(out, w, x, rows, cols, numTokens);
}

OWL_KERNEL gemv_f32(u64 outPtr, u64 wPtr, u64 xPtr, int rows, int cols) {
  int lane = thread_x() & 31;
  int r = block_x() * (block_dim_x() >> 5) + (thread_x() >> 5);
  if (r >= rows) return;
  int t = block_y();
  const float* w = (const float*) wPtr + (long long) r * cols;
  const float* x = (const float*) xPtr + (long long) t * cols;
  float sum = 0.f;
  // 16 bytes = 4 floats per chunk here.
  int vectorEnd = aligned16(w) && aligned16(x) ? cols & ~3 : 0;
#pragma unroll 4
  for (int c = lane * 4; c < vectorEnd; c += 32 * 4) {
    owl_float4 a = load16f(w + c);
    owl_float4 b = load16f(x + c);
    sum += a.x * b.x;
    sum += a.y * b.y;
    sum += a.z * b.z;
    sum += a.w * b.w;
  }
  for (int c = vectorEnd + lane; c < cols; c += 32) sum += w[c] * x[c];
  sum = warp_sum(sum);
  if (lane == 0) ((float*) outPtr)[(long long) t * rows + r] = sum;
}
