// The paged KV cache on the device and attention over it (spec §4; the engine's PagedKvCache and
// Kernels.attention).
//
// Cache layout, per layer, one array of keys and one of values in F16 (IEEE half, round to nearest
// even, as the CPU's F16 KvCacheDtype stores them): [numBlocks, blockSize, numKvHeads, headDim],
// the KvBlockPool layout. Position p of a sequence lives in block blockTable[p / blockSize] at slot
// p % blockSize; element (p, kvHead, d) is at ((block * blockSize + p % blockSize) * numKvHeads +
// kvHead) * headDim + d.
//
// A step's rows are described by three arrays the host uploads: blockTables int32
// [numSeqs, maxBlocksPerSeq] (each sequence's table, unused entries anything), rowSeq int32
// [numRows] (which sequence a row belongs to) and rowPos int32 [numRows] (the row's position).
// Decode has one row per sequence; a chunked-prefill chunk has consecutive positions of one
// sequence; both are the same to these kernels. The host validates every block id and position
// before uploading (the kernels cannot report an error); a row outside its table is skipped here
// only so that it cannot write outside the pool.
#include "owlery_cuda.h"

// Element index of (pos, 0) of kv head 0 in the pool for one sequence's table, or -1 when pos is
// outside the table.
OWL_INLINE long long slot_base(const int* table, int pos, int blockSize, int maxBlocksPerSeq, int kvWidth) {
  int i = pos / blockSize;
  if (pos < 0 || i >= maxBlocksPerSeq) return -1;
  int block = table[i];
  if (block < 0) return -1;
  return ((long long) block * blockSize + (pos - i * blockSize)) * kvWidth;
}

// ---- KV append: write each row's keys and values (after RoPE) into the pool ----
// key, value: [numRows, numKvHeads * headDim] float32. One thread per element; grid-stride.
// Must complete before the attention that reads these positions (same stream: launch order).

OWL_KERNEL kv_append(u64 kCache, u64 vCache, u64 key, u64 value, u64 blockTables, u64 rowSeq, u64 rowPos, int numRows,
    int numKvHeads, int headDim, int blockSize, int maxBlocksPerSeq) {
  int kvWidth = numKvHeads * headDim;
  long long total = (long long) numRows * kvWidth;
  for (long long i = (long long) block_x() * block_dim_x() + thread_x(); i < total;
       i += (long long) grid_dim_x() * block_dim_x()) {
    int t = (int) (i / kvWidth);
    int e = (int) (i - (long long) t * kvWidth); // kvHead * headDim + d
    const int* table = (const int*) blockTables + (long long) ((const int*) rowSeq)[t] * maxBlocksPerSeq;
    long long base = slot_base(table, ((const int*) rowPos)[t], blockSize, maxBlocksPerSeq, kvWidth);
    if (base < 0) continue;
    ((u16*) kCache)[base + e] = f32_to_f16(((const float*) key)[i]);
    ((u16*) vCache)[base + e] = f32_to_f16(((const float*) value)[i]);
  }
}

// ---- paged attention, decode and chunked-prefill rows ----
// out[t, h, :] = sum_j softmax_j(scale * q[t, h] . k[g, j]) v[g, j] over the positions j <= rowPos[t]
// of row t's sequence (the causal mask: a row sees itself and everything before it), g = h / (numHeads
// / numKvHeads) the kv head its query head shares (grouped-query attention, AttentionShape).
// q, out: [numRows, numHeads * headDim] float32; headDim even and <= 256.
//
// Grid: (numHeads, numRows); block: 32 * numWarps threads, numWarps <= 8 (256 is usual). Warp w
// takes the positions j = w, w + numWarps, ..., two per step, and keeps an online softmax over them
// (running max m, running sum l of e^(s - m), running sum acc of e^(s - m) v, rescaled when m grows),
// so no score is stored; the warps' partial results are then merged through shared memory. Each lane holds the
// dimension pairs d = 2 * lane + 64 * i (i < 4): a key or value pair is one 32-bit load, a warp
// reads 128 contiguous bytes per load.

#define ATTN_MAX_WARPS 8
#define ATTN_MAX_PAIRS 4 // headDim <= 64 * ATTN_MAX_PAIRS

OWL_KERNEL paged_attention(u64 out, u64 q, u64 kCache, u64 vCache, u64 blockTables, u64 rowSeq, u64 rowPos,
    int numHeads, int numKvHeads, int headDim, int blockSize, int maxBlocksPerSeq, float scale) {
  __shared__ float warpMax[ATTN_MAX_WARPS];
  __shared__ float warpSum[ATTN_MAX_WARPS];
  __shared__ float warpAcc[ATTN_MAX_WARPS][64 * ATTN_MAX_PAIRS];

  int h = block_x();
  int t = block_y();
  int lane = thread_x() & 31;
  int warp = thread_x() >> 5;
  int numWarps = block_dim_x() >> 5;
  int kvHead = h / (numHeads / numKvHeads);
  int kvWidth = numKvHeads * headDim;
  int pos = ((const int*) rowPos)[t];
  const int* table = (const int*) blockTables + (long long) ((const int*) rowSeq)[t] * maxBlocksPerSeq;
  const float* qRow = (const float*) q + ((long long) t * numHeads + h) * headDim;

  // This lane's query pairs; pairs past headDim are zero and contribute nothing.
  float q0[ATTN_MAX_PAIRS], q1[ATTN_MAX_PAIRS];
  float acc0[ATTN_MAX_PAIRS], acc1[ATTN_MAX_PAIRS];
#pragma unroll
  for (int i = 0; i < ATTN_MAX_PAIRS; i++) {
    int d = 2 * lane + 64 * i;
    q0[i] = d < headDim ? qRow[d] : 0.f;
    q1[i] = d < headDim ? qRow[d + 1] : 0.f;
    acc0[i] = acc1[i] = 0.f;
  }

  float m = -__builtin_inff(); // running max of this warp's scores
  float l = 0.f;               // running sum of e^(s - m)
  // Two positions per step, j and j + numWarps: their loads and shuffle sums are independent, so
  // each warp keeps two dependency chains in flight instead of one.
  for (int j = warp; j <= pos; j += 2 * numWarps) {
    long long base1 = slot_base(table, j, blockSize, maxBlocksPerSeq, kvWidth);
    if (base1 < 0) break; // outside the table: refused by the host, never read
    int j2 = j + numWarps;
    long long base2 = j2 <= pos ? slot_base(table, j2, blockSize, maxBlocksPerSeq, kvWidth) : -1;
    bool second = base2 >= 0; // the same for the whole warp
    base1 += (long long) kvHead * headDim;
    base2 += (long long) kvHead * headDim;
    // headDim even: every pair is 4-byte aligned
    const u32* k1 = (const u32*) ((const u16*) kCache + base1);
    const u32* k2 = (const u32*) ((const u16*) kCache + base2);
    const u32* v1 = (const u32*) ((const u16*) vCache + base1);
    const u32* v2 = (const u32*) ((const u16*) vCache + base2);
    // Both positions' values are loaded with their keys, before the scores need them: one trip to
    // memory per step instead of two (keys, then values after the scores).
    u32 va[ATTN_MAX_PAIRS], vb[ATTN_MAX_PAIRS];
    float partial1 = 0.f, partial2 = 0.f;
#pragma unroll
    for (int i = 0; i < ATTN_MAX_PAIRS; i++) {
      int d = 2 * lane + 64 * i;
      va[i] = vb[i] = 0;
      if (d < headDim) {
        u32 a = k1[d >> 1];
        va[i] = v1[d >> 1];
        partial1 += q0[i] * f16_to_f32(low16(a)) + q1[i] * f16_to_f32(high16(a));
        if (second) {
          u32 b = k2[d >> 1];
          vb[i] = v2[d >> 1];
          partial2 += q0[i] * f16_to_f32(low16(b)) + q1[i] * f16_to_f32(high16(b));
        }
      }
    }
    float s1 = scale * warp_sum(partial1);
    float s2 = second ? scale * warp_sum(partial2) : -__builtin_inff();
    float mNew = __builtin_fmaxf(m, __builtin_fmaxf(s1, s2));
    float correction = exp_approx(m - mNew); // e^(-inf) = 0 on the first step
    float p1 = exp_approx(s1 - mNew);
    float p2 = exp_approx(s2 - mNew); // 0 without a second position
    l = l * correction + p1 + p2;
#pragma unroll
    for (int i = 0; i < ATTN_MAX_PAIRS; i++) {
      int d = 2 * lane + 64 * i;
      if (d < headDim) {
        float lo = p1 * f16_to_f32(low16(va[i]));
        float hi = p1 * f16_to_f32(high16(va[i]));
        if (second) {
          lo += p2 * f16_to_f32(low16(vb[i]));
          hi += p2 * f16_to_f32(high16(vb[i]));
        }
        acc0[i] = acc0[i] * correction + lo;
        acc1[i] = acc1[i] * correction + hi;
      }
    }
    m = mNew;
  }

  // Merge the warps: M = max_w m_w, L = sum_w l_w e^(m_w - M), out = sum_w acc_w e^(m_w - M) / L.
  // A warp that saw no position (pos + 1 < numWarps) has m = -inf, l = 0, acc = 0 and weighs 0.
  if (lane == 0) {
    warpMax[warp] = m;
    warpSum[warp] = l;
  }
#pragma unroll
  for (int i = 0; i < ATTN_MAX_PAIRS; i++) {
    int d = 2 * lane + 64 * i;
    if (d < headDim) {
      warpAcc[warp][d] = acc0[i];
      warpAcc[warp][d + 1] = acc1[i];
    }
  }
  sync_threads();
  float mAll = -__builtin_inff();
  for (int w = 0; w < numWarps; w++) mAll = __builtin_fmaxf(mAll, warpMax[w]);
  float lAll = 0.f;
  for (int w = 0; w < numWarps; w++) lAll += warpSum[w] * exp_approx(warpMax[w] - mAll);
  float* outRow = (float*) out + ((long long) t * numHeads + h) * headDim;
  for (int d = thread_x(); d < headDim; d += block_dim_x()) {
    float sum = 0.f;
    for (int w = 0; w < numWarps; w++) sum += warpAcc[w][d] * exp_approx(warpMax[w] - mAll);
    outRow[d] = div_rn(sum, lAll);
  }
}
