// The decoder's small kernels: embedding gather, RMSNorm with per-row modality (MAM) (alone, or
// fused with the residual add before it), RoPE, SiLU(gate) * up and the residual add. Activations
// are float32 rows; every kernel computes in float32 what the engine's CPU code computes
// (spec/MPLUG_OWL2.md §4).
//
// The element-wise kernels walk their elements with a grid-stride loop, so any grid covers any size;
// the per-row kernels (embedding, RMSNorm) take one block per row.
#include "owlery_cuda.h"

// ---- embedding gather: out[t, :] = table[ids[t], :] widened to float32 ----
// Grid: numTokens blocks (one per token), any block size. An id outside [0, vocab) is the host's
// to refuse before the launch; here it writes NaN so that it cannot pass unnoticed.

template <typename Widen>
OWL_INLINE void embedding_row(float* out, const u16* table, const int* ids, int hidden, int vocab, Widen widen) {
  int t = block_x();
  int id = ids[t];
  float* row = out + (long long) t * hidden;
  if (id < 0 || id >= vocab) {
    for (int c = thread_x(); c < hidden; c += block_dim_x()) row[c] = __builtin_nanf("");
    return;
  }
  const u16* src = table + (long long) id * hidden;
  for (int c = thread_x(); c < hidden; c += block_dim_x()) row[c] = widen(src[c]);
}

OWL_KERNEL embedding_f16(u64 out, u64 table, u64 ids, int hidden, int vocab) {
  embedding_row((float*) out, (const u16*) table, (const int*) ids, hidden, vocab, f16_to_f32);
}

OWL_KERNEL embedding_bf16(u64 out, u64 table, u64 ids, int hidden, int vocab) {
  embedding_row((float*) out, (const u16*) table, (const int*) ids, hidden, vocab, bf16_to_f32);
}

OWL_KERNEL embedding_f32(u64 out, u64 table, u64 ids, int hidden, int vocab) {
  int t = block_x();
  int id = ((const int*) ids)[t];
  float* row = (float*) out + (long long) t * hidden;
  const float* src = (const float*) table + (long long) id * hidden;
  bool valid = id >= 0 && id < vocab;
  for (int c = thread_x(); c < hidden; c += block_dim_x()) row[c] = valid ? src[c] : __builtin_nanf("");
}

// ---- RMSNorm with the Modality-Adaptive Module ----
// out[t, i] = w_m[i] * (x[t, i] * s), s = 1 / sqrt(mean_i(x[t, i]^2) + eps), m = modality[t].
// weights holds numModalities rows of hidden float32 (text, then visual: Multiway's order); with
// one modality that copy serves every row, as Multiway.get does. The normalised value is rounded
// to float32 before the weight multiply, as transformers 4.31 (and RmsNorm) do.
// Grid: numRows blocks, one per row; block size a multiple of 32, at most 1024.

OWL_INLINE float block_sum(float v, float* scratch /* [32] shared */) {
  int lane = thread_x() & 31;
  int warp = thread_x() >> 5;
  int numWarps = block_dim_x() >> 5;
  v = warp_sum(v);
  if (lane == 0) scratch[warp] = v;
  sync_threads();
  float total = lane < numWarps ? scratch[lane] : 0.f;
  total = warp_sum(total); // every warp sums the per-warp partials itself: no second barrier
  sync_threads();          // scratch may be reused by the caller after this
  return total;
}

// The norm of row t of x into out, the row's own sum of squares given (already summed over the block).
OWL_INLINE void rms_norm_row(float* dst, const float* row, float sumSquares, const float* weights, const int* modality,
    int hidden, int numModalities, float eps) {
  int t = block_x();
  int m = numModalities == 1 ? 0 : modality[t];
  if (m < 0 || m >= numModalities) { // the host validates modalities; NaN makes a slip visible
    for (int i = thread_x(); i < hidden; i += block_dim_x()) dst[i] = __builtin_nanf("");
    return;
  }
  float scale = div_rn(1.f, sqrt_rn(div_rn(sumSquares, (float) hidden) + eps));
  const float* w = weights + (long long) m * hidden;
  for (int i = thread_x(); i < hidden; i += block_dim_x()) {
    float normalised = row[i] * scale;
    dst[i] = w[i] * normalised;
  }
}

OWL_KERNEL rms_norm(u64 out, u64 x, u64 weights, u64 modality, int hidden, int numModalities, float eps) {
  __shared__ float scratch[32];
  int t = block_x();
  const float* row = (const float*) x + (long long) t * hidden;
  float sumSquares = 0.f;
  for (int i = thread_x(); i < hidden; i += block_dim_x()) sumSquares += row[i] * row[i];
  sumSquares = block_sum(sumSquares, scratch);
  rms_norm_row((float*) out + (long long) t * hidden, row, sumSquares, (const float*) weights,
      (const int*) modality, hidden, numModalities, eps);
}

// The residual add and the next norm in one pass (vLLM's fused_add_rms_norm): residual[t] += x[t],
// then out[t] = RMSNorm_m(residual[t]) as rms_norm computes it; one launch and one read of the row
// instead of two. Each thread normalises the elements it added itself, so the barriers inside
// block_sum are the only ones needed. Grid: numRows blocks.
OWL_KERNEL add_rms_norm(u64 out, u64 residual, u64 x, u64 weights, u64 modality, int hidden, int numModalities,
    float eps) {
  __shared__ float scratch[32];
  int t = block_x();
  float* row = (float*) residual + (long long) t * hidden;
  const float* add = (const float*) x + (long long) t * hidden;
  float sumSquares = 0.f;
  for (int i = thread_x(); i < hidden; i += block_dim_x()) {
    float h = row[i] + add[i];
    row[i] = h;
    sumSquares += h * h;
  }
  sumSquares = block_sum(sumSquares, scratch);
  rms_norm_row((float*) out + (long long) t * hidden, row, sumSquares, (const float*) weights,
      (const int*) modality, hidden, numModalities, eps);
}

// ---- RoPE, HF rotate-half convention (RotaryEmbedding) ----
// x holds numRows rows of numHeads heads of headDim floats; row t is at position positions[t].
// Dims j and j + headDim/2 of a head form a pair: x1' = x1 c - x2 s, x2' = x2 c + x1 s with
// c = cosTable[p, j], s = sinTable[p, j], tables [maxPositions, headDim/2] float32 built on the host
// exactly as RotaryEmbedding builds its own. One thread per (row, head, j); grid-stride.

OWL_KERNEL rope(u64 x, u64 positions, u64 cosTable, u64 sinTable, int numRows, int numHeads, int headDim,
    int maxPositions) {
  int half = headDim >> 1;
  long long pairsPerRow = (long long) numHeads * half;
  long long total = numRows * pairsPerRow;
  for (long long i = (long long) block_x() * block_dim_x() + thread_x(); i < total;
       i += (long long) grid_dim_x() * block_dim_x()) {
    int t = (int) (i / pairsPerRow);
    int rest = (int) (i - t * pairsPerRow);
    int h = rest / half;
    int j = rest - h * half;
    float* head = (float*) x + (long long) t * numHeads * headDim + (long long) h * headDim;
    int p = ((const int*) positions)[t];
    if (p < 0 || p >= maxPositions) {
      head[j] = head[j + half] = __builtin_nanf("");
      continue;
    }
    float c = ((const float*) cosTable)[(long long) p * half + j];
    float s = ((const float*) sinTable)[(long long) p * half + j];
    float x1 = head[j];
    float x2 = head[j + half];
    // Rounded multiplies and adds (mul.rn / add.rn, which ptxas does not fuse into fma): RotaryEmbedding
    // rounds each product, so with the same tables the result is the CPU's bit for bit.
    head[j] = add_rn(mul_rn(x1, c), mul_rn(-x2, s));
    head[j + half] = add_rn(mul_rn(x2, c), mul_rn(x1, s));
  }
}

// ---- SiLU(gate) * up, and the residual add ----

OWL_KERNEL silu_mul(u64 out, u64 gate, u64 up, int n) {
  for (int i = block_x() * block_dim_x() + thread_x(); i < n; i += grid_dim_x() * block_dim_x()) {
    float g = ((const float*) gate)[i];
    float silu = div_rn(g, 1.f + exp_approx(-g));
    ((float*) out)[i] = silu * ((const float*) up)[i];
  }
}

// y[i] += x[i]: h = x + o after attention, x' = h + mlp after the MLP.
OWL_KERNEL residual_add(u64 y, u64 x, int n) {
  for (int i = block_x() * block_dim_x() + thread_x(); i < n; i += grid_dim_x() * block_dim_x()) {
    ((float*) y)[i] += ((const float*) x)[i];
  }
}
