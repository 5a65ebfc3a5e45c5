// Matrix-vector products for decode: out[t, r] = sum_c W[r, c] * x[t, c], W [rows, cols] row-major
// in F16, BF16 or F32, x and out float32 ([numTokens, cols] and [numTokens, rows]), accumulated in
// float32 (Kernels.matmul's contract). The lm_head's vocabulary slice is this product on its rows.
//
// Decode is bound by reading W once, so each warp owns one output row: its 32 lanes stream the row
// with 16-byte loads (8 halves or 4 floats per lane per load, consecutive lanes on consecutive
// 16 bytes, so a warp reads 512 contiguous bytes per step) and the partial sums meet by warp shuffle.
// Grid: (ceil(rows / warpsPerBlock), numTokens); block: warpsPerBlock * 32 threads (256 is usual).
// A row whose start (or x's) is not 16-byte aligned, which happens when cols is odd, is read
// element by element; the columns past the last whole 16 bytes are read element by element too.
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
