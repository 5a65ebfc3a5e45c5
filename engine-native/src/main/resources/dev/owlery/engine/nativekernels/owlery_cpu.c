/*
 * Owlery's native kernels (docs/design-notes.md, "Native kernels"): what the Vector API cannot
 * express and llama.cpp's speed on this hardware needs.
 *   - One token (decode): an int8 x int8 dot product (AVX-512 VNNI's vpdpbusd; AVX2's vpmaddubsw +
 *     vpmaddwd otherwise) for Q8_0 and Q4_0 weights times activations quantized to Q8_0, as
 *     llama.cpp multiplies them, and F16 or BF16 weights times float32 activations; all with
 *     software prefetch over four rows read in lockstep a quarter of the call's rows apart.
 *   - Several tokens (prefill, batched decode): Q8_0 on AMX (tdpbssd), 16 rows x 16 tokens a block,
 *     or where AMX is missing on AVX-512 VNNI (vpdpbusd), 12 rows x 16 tokens, with the same bits.
 *   - Attention with its two products in BF16 (AVX512_BF16's vdpbf16ps), for the native-bf16 set.
 * Compiled on the machine that runs it (NativeCpuLibrary: cc -O2 -ffp-contract=off -shared), with
 * every instruction set named per function, so the library loads on any x86-64 and
 * owlery_cpu_features says which entry points this CPU can run.
 *
 * Arithmetic (NativeReference in the tests restates it in Java, bit for bit):
 *   Q8_0, one token, row r: eight float lanes; for block b, lane j += float(sum over the block's
 *   bytes 4j..4j+3 of q * x) * (f16(row scale) * x scale[b]) as one fused multiply-add; the sum is
 *   then ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)). Q4_0 the same with its weights q - 8,
 *   but with eight lanes for the even blocks and eight for the odd ones, l_j = even_j + odd_j.
 *   Q8_0, several tokens, row r and token t: block after block, acc += float(the block's exact sum
 *   of q * x) * (x scale[t, b] * row scale[r, b]) as one fused multiply-add.
 */
#include <cpuid.h>
#include <immintrin.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define Q8_0_BLOCK_BYTES 34
#define Q4_0_BLOCK_BYTES 18
/* How far ahead each of the four streams prefetches: 1 KiB measured 12.4-13.3 GB/s for four
 * Q8_0 streams on the AMX host, against 9.4 without prefetch (docs/design-notes.md). */
#define PREFETCH_BYTES 1024

enum { FEATURE_AVX2 = 1, FEATURE_AVX512_VNNI = 2, FEATURE_AVX512 = 4, FEATURE_AMX_INT8 = 8, FEATURE_AVX512_BF16 = 16 };

/* Linux gives a process the AMX tile data state only when asked (arch_prctl, once per process). */
#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

static int amx_int8(void) {
  unsigned a, b, c, d;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(d & (1u << 24)) || !(d & (1u << 25))) {
    return 0; /* AMX-TILE, AMX-INT8 */
  }
  return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
}

int owlery_cpu_features(void) {
  __builtin_cpu_init();
  int features = 0;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c")) {
    features |= FEATURE_AVX2;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")) {
      features |= FEATURE_AVX512;
      if (__builtin_cpu_supports("avx512vnni")) {
        features |= FEATURE_AVX512_VNNI;
      }
      if (amx_int8()) {
        features |= FEATURE_AMX_INT8;
      }
      if (__builtin_cpu_supports("avx512bf16")) {
        features |= FEATURE_AVX512_BF16;
      }
    }
  }
  return features;
}

#define AVX2 "avx2,fma,f16c"
#define VNNI "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"
#define AVX512 "avx2,fma,f16c,avx512f,avx512bw,avx512vl"

__attribute__((target(AVX2), always_inline)) static inline float sum_lanes(__m256 acc) {
  __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
  h = _mm_add_ps(h, _mm_movehl_ps(h, h));
  h = _mm_add_ss(h, _mm_movehdup_ps(h));
  return _mm_cvtss_f32(h);
}

__attribute__((target(AVX2), always_inline)) static inline float block_scale(const uint8_t *block, float x_scale) {
  uint16_t half;
  __builtin_memcpy(&half, block, sizeof half);
  return _cvtsh_ss(half) * x_scale;
}

/*
 * One block's eight int32 lane sums. Q8_0: |q| (unsigned, so -128 is 128) times x signed as q.
 * Q4_0: the nibbles q (0..15, unsigned as they are; bytes j hold weights j and 16 + j) times x,
 * from x_offset, the lanes' -8 * sum of x, so each lane is the sum of (q - 8) * x.
 */
__attribute__((target(VNNI), always_inline)) static inline __m256i q8_dot_vnni(const uint8_t *block, __m256i x,
    __m256i x_offset) {
  (void) x_offset;
  __m256i q = _mm256_loadu_si256((const __m256i *) (block + 2));
  return _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_abs_epi8(q), _mm256_sign_epi8(x, q));
}

/* The same sums on AVX2: pairs into int16 (at most 2 * 128 * 127, no saturation), then pairs of those. */
__attribute__((target(AVX2), always_inline)) static inline __m256i q8_dot_avx2(const uint8_t *block, __m256i x,
    __m256i x_offset) {
  (void) x_offset;
  __m256i q = _mm256_loadu_si256((const __m256i *) (block + 2));
  __m256i pairs = _mm256_maddubs_epi16(_mm256_abs_epi8(q), _mm256_sign_epi8(x, q));
  return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
}

__attribute__((target(AVX2), always_inline)) static inline __m256i q4_nibbles(const uint8_t *block) {
  __m128i packed = _mm_loadu_si128((const __m128i *) (block + 2));
  return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(packed, 4), packed), _mm256_set1_epi8(0x0f));
}

/* pairs of nibble x int8 products fit int16 (2 * 15 * 128) */
__attribute__((target(AVX2), always_inline)) static inline __m256i q4_dot_avx2(const uint8_t *block, __m256i x,
    __m256i x_offset) {
  __m256i pairs = _mm256_maddubs_epi16(q4_nibbles(block), x);
  return _mm256_add_epi32(_mm256_madd_epi16(pairs, _mm256_set1_epi16(1)), x_offset);
}

/* The lanes' -8 * sum of x for Q4_0 (not used by Q8_0, whose compiler drops it). */
__attribute__((target(VNNI), always_inline)) static inline __m256i x_offset_vnni(__m256i x) {
  return _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(8), x));
}

__attribute__((target(AVX2), always_inline)) static inline __m256i x_offset_avx2(__m256i x) {
  __m256i pairs = _mm256_maddubs_epi16(_mm256_set1_epi8(8), x);
  return _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
}

/*
 * out[r] = row r of the block-quantized matrix w (Q8_0 or Q4_0: rows of `blocks` blocks of
 * BLOCK_BYTES, `stride` bytes apart) times the activations xq (int8, blocks * 32) with one float
 * scale per block in xd. Rows i, i + n/4, i + n/2 and i + 3n/4 are read together, each stream
 * prefetched ahead; the last n % 4 alone.
 */
#define BLOCK_MATVEC(NAME, TARGET, BLOCK_BYTES, DOT, X_OFFSET)                                         \
  __attribute__((target(TARGET))) void NAME(const uint8_t *w, int64_t stride, int32_t rows, int32_t blocks,    \
      const int8_t *xq, const float *xd, float *out) {                                                 \
    int32_t quarter = rows / 4;                                                                         \
    for (int32_t i = 0; i < quarter; i++) {                                                             \
      const uint8_t *r0 = w + i * stride;                                                               \
      const uint8_t *r1 = r0 + quarter * stride;                                                        \
      const uint8_t *r2 = r1 + quarter * stride;                                                        \
      const uint8_t *r3 = r2 + quarter * stride;                                                        \
      __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();                                        \
      __m256 a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();                                        \
      for (int32_t b = 0; b < blocks; b++) {                                                            \
        int64_t at = (int64_t) b * (BLOCK_BYTES);                                                       \
        _mm_prefetch((const char *) r0 + at + PREFETCH_BYTES, _MM_HINT_T0);                              \
        _mm_prefetch((const char *) r1 + at + PREFETCH_BYTES, _MM_HINT_T0);                              \
        _mm_prefetch((const char *) r2 + at + PREFETCH_BYTES, _MM_HINT_T0);                              \
        _mm_prefetch((const char *) r3 + at + PREFETCH_BYTES, _MM_HINT_T0);                              \
        __m256i x = _mm256_loadu_si256((const __m256i *) (xq + 32 * b));                                \
        __m256i xo = X_OFFSET(x);                                                                       \
        a0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(DOT(r0 + at, x, xo)), _mm256_set1_ps(block_scale(r0 + at, xd[b])), a0); \
        a1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(DOT(r1 + at, x, xo)), _mm256_set1_ps(block_scale(r1 + at, xd[b])), a1); \
        a2 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(DOT(r2 + at, x, xo)), _mm256_set1_ps(block_scale(r2 + at, xd[b])), a2); \
        a3 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(DOT(r3 + at, x, xo)), _mm256_set1_ps(block_scale(r3 + at, xd[b])), a3); \
      }                                                                                                 \
      out[i] = sum_lanes(a0);                                                                           \
      out[i + quarter] = sum_lanes(a1);                                                                 \
      out[i + 2 * quarter] = sum_lanes(a2);                                                             \
      out[i + 3 * quarter] = sum_lanes(a3);                                                             \
    }                                                                                                   \
    for (int32_t r = 4 * quarter; r < rows; r++) {                                                      \
      const uint8_t *row = w + r * stride;                                                              \
      __m256 a = _mm256_setzero_ps();                                                                   \
      for (int32_t b = 0; b < blocks; b++) {                                                            \
        int64_t at = (int64_t) b * (BLOCK_BYTES);                                                       \
        _mm_prefetch((const char *) row + at + PREFETCH_BYTES, _MM_HINT_T0);                             \
        __m256i x = _mm256_loadu_si256((const __m256i *) (xq + 32 * b));                                \
        __m256i xo = X_OFFSET(x);                                                                       \
        a = _mm256_fmadd_ps(_mm256_cvtepi32_ps(DOT(row + at, x, xo)), _mm256_set1_ps(block_scale(row + at, xd[b])), a); \
      }                                                                                                 \
      out[r] = sum_lanes(a);                                                                            \
    }                                                                                                   \
  }

BLOCK_MATVEC(owlery_q8_0_matvec_vnni, VNNI, Q8_0_BLOCK_BYTES, q8_dot_vnni, x_offset_vnni)
BLOCK_MATVEC(owlery_q8_0_matvec_avx2, AVX2, Q8_0_BLOCK_BYTES, q8_dot_avx2, x_offset_avx2)

/*
 * The Q4_0 matrix-vector product: as BLOCK_MATVEC, but each row keeps two sets of eight lanes, one
 * for its even blocks and one for its odd blocks, added lane by lane before the lanes' sum. The VNNI
 * form multiplies two blocks per instruction (the even block's lanes in the low half of a 512-bit
 * register, the odd one's in the high half); a Q4_0 block is half the bytes of a Q8_0 one for the
 * same work, so one block per instruction left decode at half the memory bandwidth.
 */
__attribute__((target(AVX2), always_inline)) static inline float q4_row_sum(__m256 even, __m256 odd) {
  return sum_lanes(_mm256_add_ps(even, odd));
}

/* One block of a Q4_0 row into its even or odd lanes (AVX2). */
#define Q4_AVX2_STEP(acc, row, b)                                                                     \
  do {                                                                                                \
    int64_t at_ = (int64_t) (b) * Q4_0_BLOCK_BYTES;                                                   \
    _mm_prefetch((const char *) (row) + at_ + PREFETCH_BYTES, _MM_HINT_T0);                            \
    __m256i x_ = _mm256_loadu_si256((const __m256i *) (xq + 32 * (b)));                               \
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q4_dot_avx2((row) + at_, x_, x_offset_avx2(x_))),         \
        _mm256_set1_ps(block_scale((row) + at_, xd[b])), acc);                                       \
  } while (0)

__attribute__((target(AVX2))) void owlery_q4_0_matvec_avx2(const uint8_t *w, int64_t stride, int32_t rows,
    int32_t blocks, const int8_t *xq, const float *xd, float *out) {
  int32_t quarter = rows / 4;
  for (int32_t i = 0; i < quarter; i++) {
    const uint8_t *r0 = w + i * stride;
    const uint8_t *r1 = r0 + quarter * stride;
    const uint8_t *r2 = r1 + quarter * stride;
    const uint8_t *r3 = r2 + quarter * stride;
    __m256 e0 = _mm256_setzero_ps(), o0 = _mm256_setzero_ps(), e1 = _mm256_setzero_ps(), o1 = _mm256_setzero_ps();
    __m256 e2 = _mm256_setzero_ps(), o2 = _mm256_setzero_ps(), e3 = _mm256_setzero_ps(), o3 = _mm256_setzero_ps();
    int32_t b = 0;
    for (; b + 1 < blocks; b += 2) {
      Q4_AVX2_STEP(e0, r0, b);
      Q4_AVX2_STEP(e1, r1, b);
      Q4_AVX2_STEP(e2, r2, b);
      Q4_AVX2_STEP(e3, r3, b);
      Q4_AVX2_STEP(o0, r0, b + 1);
      Q4_AVX2_STEP(o1, r1, b + 1);
      Q4_AVX2_STEP(o2, r2, b + 1);
      Q4_AVX2_STEP(o3, r3, b + 1);
    }
    if (b < blocks) {
      Q4_AVX2_STEP(e0, r0, b);
      Q4_AVX2_STEP(e1, r1, b);
      Q4_AVX2_STEP(e2, r2, b);
      Q4_AVX2_STEP(e3, r3, b);
    }
    out[i] = q4_row_sum(e0, o0);
    out[i + quarter] = q4_row_sum(e1, o1);
    out[i + 2 * quarter] = q4_row_sum(e2, o2);
    out[i + 3 * quarter] = q4_row_sum(e3, o3);
  }
  for (int32_t row = 4 * quarter; row < rows; row++) {
    const uint8_t *r = w + row * stride;
    __m256 e = _mm256_setzero_ps(), o = _mm256_setzero_ps();
    int32_t b = 0;
    for (; b + 1 < blocks; b += 2) {
      Q4_AVX2_STEP(e, r, b);
      Q4_AVX2_STEP(o, r, b + 1);
    }
    if (b < blocks) {
      Q4_AVX2_STEP(e, r, b);
    }
    out[row] = q4_row_sum(e, o);
  }
}

/* Blocks b (low 8 lanes) and b + 1 (high 8 lanes) of a Q4_0 row: their lane sums of (q - 8) * x. */
__attribute__((target(VNNI), always_inline)) static inline __m512i q4_pair_dot(const uint8_t *block, __m512i x,
    __m512i x_offset) {
  __m128i p0 = _mm_loadu_si128((const __m128i *) (block + 2));
  __m128i p1 = _mm_loadu_si128((const __m128i *) (block + Q4_0_BLOCK_BYTES + 2));
  __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set_m128i(_mm_srli_epi16(p0, 4), p0)),
      _mm256_set_m128i(_mm_srli_epi16(p1, 4), p1), 1);
  return _mm512_dpbusd_epi32(x_offset, _mm512_and_si512(q, _mm512_set1_epi8(0x0f)), x);
}

/* The two blocks' scales (row scale times the block's x scale, as block_scale), each over its 8 lanes. */
__attribute__((target(VNNI), always_inline)) static inline __m512 q4_pair_scale(const uint8_t *block, const float *xd) {
  uint16_t h0, h1;
  __builtin_memcpy(&h0, block, sizeof h0);
  __builtin_memcpy(&h1, block + Q4_0_BLOCK_BYTES, sizeof h1);
  __m128 d = _mm_cvtph_ps(_mm_insert_epi16(_mm_cvtsi32_si128(h0), h1, 1));
  __m128 s = _mm_mul_ps(d, _mm_castpd_ps(_mm_load_sd((const double *) xd)));
  return _mm512_permutexvar_ps(_mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0),
      _mm512_castps128_ps512(s));
}

__attribute__((target(VNNI), always_inline)) static inline float q4_row_sum512(__m512 acc) {
  return q4_row_sum(_mm512_castps512_ps256(acc), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc), 1)));
}

/* A last, even-numbered block alone: its sums in the low 8 lanes, the high ones left as they are. */
__attribute__((target(VNNI), always_inline)) static inline __m512 q4_last_block(const uint8_t *block, const int8_t *xq,
    float xd, __m512 acc) {
  __m256i x = _mm256_loadu_si256((const __m256i *) xq);
  __m256i dot = _mm256_dpbusd_epi32(x_offset_vnni(x), q4_nibbles(block), x);
  __m512 sums = _mm512_castps256_ps512(_mm256_cvtepi32_ps(dot));
  return _mm512_mask3_fmadd_ps(sums, _mm512_set1_ps(block_scale(block, xd)), acc, 0x00ff);
}

__attribute__((target(VNNI))) void owlery_q4_0_matvec_vnni(const uint8_t *w, int64_t stride, int32_t rows,
    int32_t blocks, const int8_t *xq, const float *xd, float *out) {
  int32_t quarter = rows / 4;
  int32_t pairs = blocks / 2;
  for (int32_t i = 0; i < quarter; i++) {
    const uint8_t *r[4] = {w + i * stride, w + (i + quarter) * stride, w + (i + 2 * quarter) * stride,
        w + (i + 3 * quarter) * stride};
    __m512 acc[4];
    for (int k = 0; k < 4; k++) {
      acc[k] = _mm512_setzero_ps();
    }
    for (int32_t p = 0; p < pairs; p++) {
      int64_t at = (int64_t) 2 * p * Q4_0_BLOCK_BYTES;
      __m512i x = _mm512_loadu_si512(xq + 64 * p);
      __m512i xo = _mm512_sub_epi32(_mm512_setzero_si512(),
          _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(8), x));
#pragma GCC unroll 4
      for (int k = 0; k < 4; k++) {
        _mm_prefetch((const char *) r[k] + at + PREFETCH_BYTES, _MM_HINT_T0);
        acc[k] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(q4_pair_dot(r[k] + at, x, xo)), q4_pair_scale(r[k] + at, xd + 2 * p),
            acc[k]);
      }
    }
    for (int k = 0; k < 4; k++) {
      if (blocks & 1) {
        acc[k] = q4_last_block(r[k] + (int64_t) (blocks - 1) * Q4_0_BLOCK_BYTES, xq + 32 * (blocks - 1), xd[blocks - 1],
            acc[k]);
      }
      out[i + k * quarter] = q4_row_sum512(acc[k]);
    }
  }
  for (int32_t row = 4 * quarter; row < rows; row++) {
    const uint8_t *r = w + row * stride;
    __m512 acc = _mm512_setzero_ps();
    for (int32_t p = 0; p < pairs; p++) {
      int64_t at = (int64_t) 2 * p * Q4_0_BLOCK_BYTES;
      __m512i x = _mm512_loadu_si512(xq + 64 * p);
      __m512i xo = _mm512_sub_epi32(_mm512_setzero_si512(),
          _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(8), x));
      acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(q4_pair_dot(r + at, x, xo)), q4_pair_scale(r + at, xd + 2 * p), acc);
    }
    if (blocks & 1) {
      acc = q4_last_block(r + (int64_t) (blocks - 1) * Q4_0_BLOCK_BYTES, xq + 32 * (blocks - 1), xd[blocks - 1], acc);
    }
    out[row] = q4_row_sum512(acc);
  }
}

/*
 * 16 halves at p widened to floats, both exactly: F16 by vcvtph2ps; BF16 (the top half of a float's
 * bits) by moving each to the top of its lane.
 */
__attribute__((target(AVX512), always_inline)) static inline __m512 half_load(const uint16_t *p, int bf16) {
  __m256i halves = _mm256_loadu_si256((const __m256i *) p);
  return bf16 ? _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(halves), 16)) : _mm512_cvtph_ps(halves);
}

/*
 * out[r] = row r of the F16 (bf16: BF16) matrix w (rows of `cols` halves, a multiple of 32, `stride`
 * bytes apart) times the float activations x, four rows a quarter apart read together as in the Q8_0
 * kernel. Per row two 16-lane accumulators (columns 32c..32c+15 and 32c+16..32c+31), added lane by
 * lane, then _mm512_reduce_add_ps. half_matvec is inlined with bf16 a constant.
 */
__attribute__((target(AVX512), always_inline)) static inline void half_matvec(const uint8_t *w, int64_t stride,
    int32_t rows, int32_t cols, const float *x, float *out, int bf16) {
  int32_t quarter = rows / 4;
  for (int32_t i = 0; i < quarter; i++) {
    const uint8_t *r0 = w + i * stride;
    const uint8_t *r1 = r0 + quarter * stride;
    const uint8_t *r2 = r1 + quarter * stride;
    const uint8_t *r3 = r2 + quarter * stride;
    __m512 a0 = _mm512_setzero_ps(), b0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), b1 = _mm512_setzero_ps();
    __m512 a2 = _mm512_setzero_ps(), b2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps(), b3 = _mm512_setzero_ps();
    for (int32_t c = 0; c < cols; c += 32) {
      int64_t at = 2 * (int64_t) c;
      _mm_prefetch((const char *) r0 + at + PREFETCH_BYTES, _MM_HINT_T0);
      _mm_prefetch((const char *) r1 + at + PREFETCH_BYTES, _MM_HINT_T0);
      _mm_prefetch((const char *) r2 + at + PREFETCH_BYTES, _MM_HINT_T0);
      _mm_prefetch((const char *) r3 + at + PREFETCH_BYTES, _MM_HINT_T0);
      __m512 xa = _mm512_loadu_ps(x + c);
      __m512 xb = _mm512_loadu_ps(x + c + 16);
      a0 = _mm512_fmadd_ps(half_load((const uint16_t *) (r0 + at), bf16), xa, a0);
      b0 = _mm512_fmadd_ps(half_load((const uint16_t *) (r0 + at) + 16, bf16), xb, b0);
      a1 = _mm512_fmadd_ps(half_load((const uint16_t *) (r1 + at), bf16), xa, a1);
      b1 = _mm512_fmadd_ps(half_load((const uint16_t *) (r1 + at) + 16, bf16), xb, b1);
      a2 = _mm512_fmadd_ps(half_load((const uint16_t *) (r2 + at), bf16), xa, a2);
      b2 = _mm512_fmadd_ps(half_load((const uint16_t *) (r2 + at) + 16, bf16), xb, b2);
      a3 = _mm512_fmadd_ps(half_load((const uint16_t *) (r3 + at), bf16), xa, a3);
      b3 = _mm512_fmadd_ps(half_load((const uint16_t *) (r3 + at) + 16, bf16), xb, b3);
    }
    out[i] = _mm512_reduce_add_ps(_mm512_add_ps(a0, b0));
    out[i + quarter] = _mm512_reduce_add_ps(_mm512_add_ps(a1, b1));
    out[i + 2 * quarter] = _mm512_reduce_add_ps(_mm512_add_ps(a2, b2));
    out[i + 3 * quarter] = _mm512_reduce_add_ps(_mm512_add_ps(a3, b3));
  }
  for (int32_t r = 4 * quarter; r < rows; r++) {
    const uint8_t *row = w + r * stride;
    __m512 a = _mm512_setzero_ps(), b = _mm512_setzero_ps();
    for (int32_t c = 0; c < cols; c += 32) {
      int64_t at = 2 * (int64_t) c;
      _mm_prefetch((const char *) row + at + PREFETCH_BYTES, _MM_HINT_T0);
      a = _mm512_fmadd_ps(half_load((const uint16_t *) (row + at), bf16), _mm512_loadu_ps(x + c), a);
      b = _mm512_fmadd_ps(half_load((const uint16_t *) (row + at) + 16, bf16), _mm512_loadu_ps(x + c + 16), b);
    }
    out[r] = _mm512_reduce_add_ps(_mm512_add_ps(a, b));
  }
}

__attribute__((target(AVX512))) void owlery_half_matvec_avx512(const uint8_t *w, int64_t stride, int32_t rows,
    int32_t cols, const float *x, float *out, int32_t bf16) {
  if (bf16) {
    half_matvec(w, stride, rows, cols, x, out, 1);
  } else {
    half_matvec(w, stride, rows, cols, x, out, 0);
  }
}

/*
 * Products of several tokens on AMX: out[t * out_stride + r] for the `rows` Q8_0 rows of w (as in
 * the matrix-vector kernel) and `tiles` tiles of 16 tokens. Per 16 rows and block: the rows' 32
 * int8 (tile A, read in place, 16 rows `stride` apart), the tokens' 32 int8 (tile B, packed by
 * owlery_q8_0_pack_tokens), tdpbssd into 16 x 16 int32 sums (exact), then per row r: its 16 token
 * lanes += float(sum) * (x scales of the block * w_scales[r, b]), one FMA per lane, block after
 * block. w_scales holds each row's block scales as floats (rows x blocks, then zeros up to a whole
 * group of 16 rows); x_scales 16 per block and
 * tile (zero for padding tokens, whose outputs are not written: `tokens` in all). The last group of
 * fewer than 16 rows is copied into a zeroed buffer block by block.
 */
struct tile_config {
  uint8_t palette;
  uint8_t start_row;
  uint8_t reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};

/* One block's tile product into sums (16 rows x 16 tokens, int32), on tiles c (sums), ta (rows), tb (tokens). */
#define BLOCK_PRODUCT(c, ta, tb, a, a_stride, x, sums)                                                \
  do {                                                                                                \
    _tile_zero(c);                                                                                    \
    _tile_loadd(ta, a, a_stride);                                                                     \
    _tile_loadd(tb, x, 64);                                                                           \
    _tile_dpbssd(c, ta, tb);                                                                          \
    _tile_stored(c, sums, 64);                                                                        \
  } while (0)

/* Each row's 16 token lanes += float(its sums) * (the block's token scales * the row's scale). */
__attribute__((target("avx512f,avx512bw,avx512vl"), always_inline)) static inline void scale_block(__m512 *acc,
    const int32_t *sums, __m512 xs, const float *w_scales, int64_t w_scale_stride) {
  for (int r = 0; r < 16; r++) {
    __m512 scale = _mm512_mul_ps(xs, _mm512_set1_ps(w_scales[r * w_scale_stride]));
    acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(sums + 16 * r)), scale, acc[r]);
  }
}

/* A group's sums (acc[r]: 16 token lanes of row g + r) into out[t * out_stride + g + r], for the tile's tokens. */
__attribute__((target("avx512f,avx512bw,avx512vl"), always_inline)) static inline void store_group(const __m512 *acc,
    int32_t group_rows, int32_t tile, int32_t tokens, float *out, int64_t out_stride, int32_t g) {
  float results[16 * 16] __attribute__((aligned(64)));
  for (int r = 0; r < group_rows; r++) {
    _mm512_store_ps(results + 16 * r, acc[r]);
  }
  int32_t first = tile * 16;
  int32_t count = tokens - first < 16 ? tokens - first : 16;
  for (int32_t t = 0; t < count; t++) {
    float *o = out + (int64_t) (first + t) * out_stride + g;
    for (int r = 0; r < group_rows; r++) {
      o[r] = results[16 * r + t];
    }
  }
}

__attribute__((target("avx512f,avx512bw,avx512vl,amx-tile,amx-int8"))) void owlery_q8_0_matmul_amx(const uint8_t *w,
    int64_t stride, int32_t rows, int32_t blocks, const float *w_scales, const int8_t *x_packed,
    const float *x_scales, int32_t tokens, float *out, int64_t out_stride) {
  struct tile_config config;
  memset(&config, 0, sizeof config);
  config.palette = 1;
  /* two sets, so one block's tile product runs while the one before is scaled: tmm0/tmm3 sums 16 x 16
   * int32, tmm1/tmm4 rows 16 x 32 int8, tmm2/tmm5 tokens 8 x 64 int8 */
  for (int t = 0; t < 6; t++) {
    config.rows[t] = t % 3 == 2 ? 8 : 16;
    config.colsb[t] = t % 3 == 1 ? 32 : 64;
  }
  _tile_loadconfig(&config);
  int32_t tiles = (tokens + 15) / 16;
  int32_t sums[2][16 * 16] __attribute__((aligned(64)));
  uint8_t tail[2][16 * 32] __attribute__((aligned(64)));
  for (int32_t g = 0; g < rows; g += 16) {
    int32_t group_rows = rows - g < 16 ? rows - g : 16;
    const uint8_t *group = w + g * stride;
    const float *group_scales = w_scales + (int64_t) g * blocks;
    for (int32_t tile = 0; tile < tiles; tile++) {
      const int8_t *xt = x_packed + (int64_t) tile * blocks * 512;
      const float *st = x_scales + (int64_t) tile * blocks * 16;
      __m512 acc[16];
      for (int r = 0; r < 16; r++) {
        acc[r] = _mm512_setzero_ps();
      }
      for (int32_t b = 0; b < blocks; b++) {
        int k = b & 1; /* the tile set and buffers of this block */
        const uint8_t *a = group + (int64_t) b * Q8_0_BLOCK_BYTES + 2;
        int64_t a_stride = stride;
        if (group_rows < 16) {
          memset(tail[k], 0, sizeof tail[k]);
          for (int r = 0; r < group_rows; r++) {
            memcpy(tail[k] + 32 * r, a + r * stride, 32);
          }
          a = tail[k];
          a_stride = 32;
        }
        if (k == 0) {
          BLOCK_PRODUCT(0, 1, 2, a, a_stride, xt + (int64_t) b * 512, sums[0]);
        } else {
          BLOCK_PRODUCT(3, 4, 5, a, a_stride, xt + (int64_t) b * 512, sums[1]);
        }
        if (b > 0) {
          scale_block(acc, sums[k ^ 1], _mm512_loadu_ps(st + (int64_t) (b - 1) * 16), group_scales + b - 1, blocks);
        }
      }
      scale_block(acc, sums[(blocks - 1) & 1], _mm512_loadu_ps(st + (int64_t) (blocks - 1) * 16),
          group_scales + blocks - 1, blocks);
      store_group(acc, group_rows, tile, tokens, out, out_stride, g);
    }
  }
  _tile_release();
}

/*
 * The same products where AMX is missing, on AVX-512 VNNI, bit for bit the AMX kernel's: the same
 * packed tokens, the same exact int32 sums per row, token and block, scaled the same way. Lanes are
 * tokens: per block, row k of the packed tile (4 bytes of each of 16 tokens), made unsigned by
 * adding 128 (xor 0x80), times the row's bytes 4k..4k+3 broadcast, is one vpdpbusd; eight of them
 * from -128 * the sum of the row's 32 bytes (w_offsets, the correction for the 128 added) leave each
 * lane the token's exact sum. Twelve rows go together (each token vector loaded serves twelve rows;
 * on the Zen 5 host, one thread, 5632 x 2048 x 128 tokens: 4 rows 417-435 GOP/s, 8 rows 341-357,
 * 10 rows 509-528, 12 rows 500-528, 16 rows 491-498); per row and tile of 16 tokens its lanes are
 * scaled block after block as in scale_block. Q4_0 rows (owlery_q4_0_matmul_vnni) are unpacked to
 * int8 q - 8 block by block first, then multiplied the same way.
 */
#define VNNI_ROWS 12

/* A Q4_0 block's 32 weights q - 8 as int8, in order (byte j holds weights j and 16 + j). */
__attribute__((target(VNNI), always_inline)) static inline void q4_unpack(const uint8_t *block, int8_t *weights) {
  _mm256_storeu_si256((__m256i *) weights, _mm256_sub_epi8(q4_nibbles(block), _mm256_set1_epi8(8)));
}

__attribute__((target(VNNI), always_inline)) static inline void matmul_vnni(const uint8_t *w, int64_t stride,
    int32_t rows, int32_t blocks, const float *w_scales, const int32_t *w_offsets, const int8_t *x_packed,
    const float *x_scales, int32_t tokens, float *out, int64_t out_stride, const int q4) {
  const int64_t block_bytes = q4 ? Q4_0_BLOCK_BYTES : Q8_0_BLOCK_BYTES;
  int8_t unpacked[VNNI_ROWS][32] __attribute__((aligned(32)));
  int32_t tiles = (tokens + 15) / 16;
  const __m512i unsigned_bias = _mm512_set1_epi8((char) 0x80);
  for (int32_t g = 0; g < rows; g += VNNI_ROWS) {
    int32_t group_rows = rows - g < VNNI_ROWS ? rows - g : VNNI_ROWS;
    /* a short last group repeats its last row; those lanes are not written */
    const uint8_t *row[VNNI_ROWS];
    const float *scales[VNNI_ROWS];
    const int32_t *offsets[VNNI_ROWS];
    for (int r = 0; r < VNNI_ROWS; r++) {
      int32_t at = g + (r < group_rows ? r : group_rows - 1);
      row[r] = w + at * stride;
      scales[r] = w_scales + (int64_t) at * blocks;
      offsets[r] = w_offsets + (int64_t) at * blocks;
    }
    for (int32_t tile = 0; tile < tiles; tile++) {
      const int8_t *xt = x_packed + (int64_t) tile * blocks * 512;
      const float *st = x_scales + (int64_t) tile * blocks * 16;
      __m512 acc[VNNI_ROWS];
      for (int r = 0; r < VNNI_ROWS; r++) {
        acc[r] = _mm512_setzero_ps();
      }
      for (int32_t b = 0; b < blocks; b++) {
        const int8_t *xb = xt + (int64_t) b * 512;
        int64_t at = (int64_t) b * block_bytes;
        const uint8_t *bytes_of[VNNI_ROWS];
#pragma GCC unroll 16
        for (int r = 0; r < VNNI_ROWS; r++) {
          if (q4) {
            q4_unpack(row[r] + at, unpacked[r]);
            bytes_of[r] = (const uint8_t *) unpacked[r];
          } else {
            bytes_of[r] = row[r] + at + 2;
          }
        }
        __m512i sums[VNNI_ROWS];
#pragma GCC unroll 16
        for (int r = 0; r < VNNI_ROWS; r++) {
          sums[r] = _mm512_set1_epi32(offsets[r][b]);
        }
#pragma GCC unroll 16
        for (int k = 0; k < 8; k++) {
          __m512i x = _mm512_xor_si512(_mm512_loadu_si512(xb + 64 * k), unsigned_bias);
#pragma GCC unroll 16
          for (int r = 0; r < VNNI_ROWS; r++) {
            int32_t bytes;
            __builtin_memcpy(&bytes, bytes_of[r] + 4 * k, sizeof bytes);
            sums[r] = _mm512_dpbusd_epi32(sums[r], x, _mm512_set1_epi32(bytes));
          }
        }
        __m512 xs = _mm512_loadu_ps(st + (int64_t) b * 16);
#pragma GCC unroll 16
        for (int r = 0; r < VNNI_ROWS; r++) {
          __m512 scale = _mm512_mul_ps(xs, _mm512_set1_ps(scales[r][b]));
          acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums[r]), scale, acc[r]);
        }
      }
      store_group(acc, group_rows, tile, tokens, out, out_stride, g);
    }
  }
}

__attribute__((target(VNNI))) void owlery_q8_0_matmul_vnni(const uint8_t *w, int64_t stride, int32_t rows,
    int32_t blocks, const float *w_scales, const int32_t *w_offsets, const int8_t *x_packed, const float *x_scales,
    int32_t tokens, float *out, int64_t out_stride) {
  matmul_vnni(w, stride, rows, blocks, w_scales, w_offsets, x_packed, x_scales, tokens, out, out_stride, 0);
}

__attribute__((target(VNNI))) void owlery_q4_0_matmul_vnni(const uint8_t *w, int64_t stride, int32_t rows,
    int32_t blocks, const float *w_scales, const int32_t *w_offsets, const int8_t *x_packed, const float *x_scales,
    int32_t tokens, float *out, int64_t out_stride) {
  matmul_vnni(w, stride, rows, blocks, w_scales, w_offsets, x_packed, x_scales, tokens, out, out_stride, 1);
}

/*
 * F16 (bf16: BF16) products of a few tokens (AVX-512; batched decode): out[t * out_stride + r] = row r
 * of w (rows of `cols` halves, a multiple of 16, `stride` bytes apart) times token t's float activations (row
 * t of x, `cols` floats). HALF_ROWS rows by HALF_TOKENS tokens at a time, lanes over columns as in the
 * one-token kernel: per 16 columns each row's halves widened once and each token's floats loaded
 * once serve 24 FMAs, one accumulator per row and token, summed across its lanes at the end. Short
 * groups repeat their last row or token; those results are not written. On the Zen 5 host, one
 * thread, 4096 x 4096: 106-111 GFLOP/s at 16 tokens, 120-128 at 32, 116-138 at 64, 108-112 at 128
 * (the vector kernels 53, 65, 118, 137); the tokens as lanes instead (the weights broadcast from a
 * widened panel, 12 rows a tile) ran 71-103 at 16 tokens, 131-144 at 128.
 */
#define HALF_ROWS 4
#define HALF_TOKENS 6

__attribute__((target(AVX512), always_inline)) static inline void half_matmul(const uint8_t *w, int64_t stride,
    int32_t rows, int32_t cols, const float *x, int32_t tokens, float *out, int64_t out_stride, int bf16) {
  for (int32_t r0 = 0; r0 < rows; r0 += HALF_ROWS) {
    const uint16_t *row[HALF_ROWS];
    for (int r = 0; r < HALF_ROWS; r++) {
      row[r] = (const uint16_t *) (w + (int64_t) (r0 + r < rows ? r0 + r : rows - 1) * stride);
    }
    for (int32_t t0 = 0; t0 < tokens; t0 += HALF_TOKENS) {
      const float *token[HALF_TOKENS];
      for (int t = 0; t < HALF_TOKENS; t++) {
        token[t] = x + (int64_t) (t0 + t < tokens ? t0 + t : tokens - 1) * cols;
      }
      __m512 acc[HALF_ROWS][HALF_TOKENS];
#pragma GCC unroll 32
      for (int r = 0; r < HALF_ROWS; r++) {
        for (int t = 0; t < HALF_TOKENS; t++) {
          acc[r][t] = _mm512_setzero_ps();
        }
      }
      for (int32_t c = 0; c < cols; c += 16) {
        __m512 weights[HALF_ROWS];
#pragma GCC unroll 8
        for (int r = 0; r < HALF_ROWS; r++) {
          weights[r] = half_load(row[r] + c, bf16);
        }
#pragma GCC unroll 8
        for (int t = 0; t < HALF_TOKENS; t++) {
          __m512 xv = _mm512_loadu_ps(token[t] + c);
#pragma GCC unroll 8
          for (int r = 0; r < HALF_ROWS; r++) {
            acc[r][t] = _mm512_fmadd_ps(weights[r], xv, acc[r][t]);
          }
        }
      }
      for (int r = 0; r < HALF_ROWS && r0 + r < rows; r++) {
        for (int t = 0; t < HALF_TOKENS && t0 + t < tokens; t++) {
          out[(int64_t) (t0 + t) * out_stride + r0 + r] = _mm512_reduce_add_ps(acc[r][t]);
        }
      }
    }
  }
}

__attribute__((target(AVX512))) void owlery_half_matmul_avx512(const uint8_t *w, int64_t stride, int32_t rows,
    int32_t cols, const float *x, int32_t tokens, float *out, int64_t out_stride, int32_t bf16) {
  if (bf16) {
    half_matmul(w, stride, rows, cols, x, tokens, out, out_stride, 1);
  } else {
    half_matmul(w, stride, rows, cols, x, tokens, out, out_stride, 0);
  }
}

/*
 * Per Q8_0 (with q4, Q4_0) row and block of w, what the several-token kernels need beside the
 * weights: the block's scale as a float (scales, rows x blocks) and -128 times the sum of its 32
 * weights as int8 (Q4_0: q - 8) (offsets, the VNNI kernel's correction for the tokens' unsigned
 * bias; null to skip).
 */
__attribute__((target(AVX2))) void owlery_block_table(const uint8_t *w, int64_t stride, int32_t rows,
    int32_t blocks, int32_t q4, float *scales, int32_t *offsets) {
  const int64_t block_bytes = q4 ? Q4_0_BLOCK_BYTES : Q8_0_BLOCK_BYTES;
  const __m256i ones = _mm256_set1_epi16(1);
  for (int32_t r = 0; r < rows; r++) {
    for (int32_t b = 0; b < blocks; b++) {
      const uint8_t *block = w + r * stride + (int64_t) b * block_bytes;
      int64_t at = (int64_t) r * blocks + b;
      scales[at] = block_scale(block, 1.0f);
      if (offsets) {
        __m256i q = q4 ? _mm256_sub_epi8(q4_nibbles(block), _mm256_set1_epi8(8))
                       : _mm256_loadu_si256((const __m256i *) (block + 2));
        /* sign-extended to int16, pairs summed into int32, then the eight lanes */
        __m256i lo = _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm256_castsi256_si128(q)), ones);
        __m256i hi = _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm256_extracti128_si256(q, 1)), ones);
        __m256i s = _mm256_add_epi32(lo, hi);
        __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
        h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
        h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1));
        offsets[at] = -128 * _mm_cvtsi128_si32(h);
      }
    }
  }
}

/*
 * Activations to Q8_0 as llama.cpp's x86 quantize_row_q8_0 (Q8Activations says how): per block of
 * 32 floats, d[b] = the F16 rounding of max|x| / 127 (as the float it rounds to) and q = x * (127 /
 * max|x|) rounded to nearest, ties to even (cvtps2dq under the default rounding mode).
 */
__attribute__((target(AVX2))) void owlery_quantize_q8_0(const float *x, int64_t blocks, int8_t *q, float *d) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int64_t b = 0; b < blocks; b++) {
    const float *xb = x + 32 * b;
    __m256 v0 = _mm256_loadu_ps(xb), v1 = _mm256_loadu_ps(xb + 8);
    __m256 v2 = _mm256_loadu_ps(xb + 16), v3 = _mm256_loadu_ps(xb + 24);
    __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v0), _mm256_andnot_ps(sign, v1)),
        _mm256_max_ps(_mm256_andnot_ps(sign, v2), _mm256_andnot_ps(sign, v3)));
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    float amax = _mm_cvtss_f32(h);
    d[b] = _cvtsh_ss(_cvtss_sh(amax / 127.0f, _MM_FROUND_TO_NEAREST_INT));
    __m256 id = _mm256_set1_ps(amax != 0.0f ? 127.0f / amax : 0.0f);
    __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(v0, id)), i1 = _mm256_cvtps_epi32(_mm256_mul_ps(v1, id));
    __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(v2, id)), i3 = _mm256_cvtps_epi32(_mm256_mul_ps(v3, id));
    /* packs work within 128-bit lanes: the permute puts the eight 4-byte groups back in order */
    __m256i bytes = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
    _mm256_storeu_si256((__m256i *) (q + 32 * b), _mm256_permutevar8x32_epi32(bytes, order));
  }
}

/* Rows r[0..7] of eight 32-bit values each, transposed in place: r[k] becomes value k of every row. */
__attribute__((target(AVX2), always_inline)) static inline void transpose_8x8(__m256i *r) {
  __m256i t0 = _mm256_unpacklo_epi32(r[0], r[1]), t1 = _mm256_unpackhi_epi32(r[0], r[1]);
  __m256i t2 = _mm256_unpacklo_epi32(r[2], r[3]), t3 = _mm256_unpackhi_epi32(r[2], r[3]);
  __m256i t4 = _mm256_unpacklo_epi32(r[4], r[5]), t5 = _mm256_unpackhi_epi32(r[4], r[5]);
  __m256i t6 = _mm256_unpacklo_epi32(r[6], r[7]), t7 = _mm256_unpackhi_epi32(r[6], r[7]);
  __m256i u0 = _mm256_unpacklo_epi64(t0, t2), u1 = _mm256_unpackhi_epi64(t0, t2);
  __m256i u2 = _mm256_unpacklo_epi64(t1, t3), u3 = _mm256_unpackhi_epi64(t1, t3);
  __m256i u4 = _mm256_unpacklo_epi64(t4, t6), u5 = _mm256_unpackhi_epi64(t4, t6);
  __m256i u6 = _mm256_unpacklo_epi64(t5, t7), u7 = _mm256_unpackhi_epi64(t5, t7);
  r[0] = _mm256_permute2x128_si256(u0, u4, 0x20);
  r[1] = _mm256_permute2x128_si256(u1, u5, 0x20);
  r[2] = _mm256_permute2x128_si256(u2, u6, 0x20);
  r[3] = _mm256_permute2x128_si256(u3, u7, 0x20);
  r[4] = _mm256_permute2x128_si256(u0, u4, 0x31);
  r[5] = _mm256_permute2x128_si256(u1, u5, 0x31);
  r[6] = _mm256_permute2x128_si256(u2, u6, 0x31);
  r[7] = _mm256_permute2x128_si256(u3, u7, 0x31);
}

/*
 * The tokens' int8 activations (token t's at xq + t * cols) in tdpbssd's B layout, 16 tokens a tile
 * (missing ones zero): per tile and block, 8 rows of 64 bytes, row k holding for each token its 4
 * bytes 4k..4k+3 of the block. Each half of a tile's block is an 8 x 8 transpose of 4-byte groups
 * (a scalar copy of 4 bytes at a time ran on the caller's thread alone, before every product).
 */
__attribute__((target(AVX2))) void owlery_q8_0_pack_tokens(const int8_t *xq, int32_t tokens, int32_t cols,
    int8_t *out) {
  int32_t tiles = (tokens + 15) / 16;
  int32_t blocks = cols / 32;
  for (int32_t tile = 0; tile < tiles; tile++) {
    int32_t first = tile * 16;
    for (int32_t b = 0; b < blocks; b++) {
      int8_t *dst = out + ((int64_t) tile * blocks + b) * 512;
      for (int half = 0; half < 2; half++) {
        __m256i r[8];
        for (int i = 0; i < 8; i++) {
          int32_t t = first + 8 * half + i;
          r[i] = t < tokens ? _mm256_loadu_si256((const __m256i *) (xq + (int64_t) t * cols + 32 * b))
                            : _mm256_setzero_si256();
        }
        transpose_8x8(r);
        for (int k = 0; k < 8; k++) {
          _mm256_storeu_si256((__m256i *) (dst + 64 * k + 32 * half), r[k]);
        }
      }
    }
  }
}

/*
 * Attention with both products in BF16 (AVX512_BF16's vdpbf16ps: pairs of BF16 multiplied, summed
 * in float32), the online softmax in float32. Keys and values come in as float32 rows and are
 * rounded to BF16 (nearest, ties to even) once per kv head and call, queries per group of rows, the
 * softmax weights per key block. The layouts pair neighbours for vdpbf16ps:
 *   key tiles: per block of 64 keys, per pair of dimensions (2i, 2i + 1), 64 x 2 halves (key j's
 *     two at 2j), zero past the last key;
 *   value pairs: per pair of keys (2j, 2j + 1), per dimension d, the two keys' values at 2d,
 *     zero past the last key.
 */
#define BF16 "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512bf16"
#define KEY_BLOCK 64
/* Query rows through a key block together: each key and value vector loaded serves four rows (4,
 * 5 and 6 measured alike on the Zen 5 host, 163-205 GFLOP/s on one thread for one kv head of 8
 * query heads x 64 at 2,032 causal tokens, bimodal from run to run). */
#define ATTENTION_ROWS 4

__attribute__((target(BF16), always_inline)) static inline void bf16_store(uint16_t *dst, __m512 v) {
  _mm256_storeu_si256((__m256i *) dst, (__m256i) _mm512_cvtneps_pbh(v));
}

/* count keys of head_dim floats (a multiple of 16), row after row, into key tiles */
__attribute__((target(BF16))) void owlery_bf16_key_tiles(const float *keys, int32_t count, int32_t head_dim,
    uint16_t *tiles) {
  int32_t blocks = (count + KEY_BLOCK - 1) / KEY_BLOCK;
  for (int32_t b = 0; b < blocks; b++) {
    uint16_t *tile = tiles + (int64_t) b * KEY_BLOCK * head_dim;
    for (int32_t j = 0; j < KEY_BLOCK; j++) {
      int32_t key = b * KEY_BLOCK + j;
      for (int32_t d0 = 0; d0 < head_dim; d0 += 16) {
        uint16_t row[16];
        bf16_store(row, key < count ? _mm512_loadu_ps(keys + (int64_t) key * head_dim + d0) : _mm512_setzero_ps());
        for (int i = 0; i < 16; i += 2) {
          uint16_t *pair = tile + (int64_t) (d0 + i) / 2 * 2 * KEY_BLOCK + 2 * j;
          pair[0] = row[i];
          pair[1] = row[i + 1];
        }
      }
    }
  }
}

/* count values of head_dim floats (a multiple of 16), row after row, into value pairs */
__attribute__((target(BF16))) void owlery_bf16_value_pairs(const float *values, int32_t count, int32_t head_dim,
    uint16_t *pairs) {
  for (int32_t j = 0; j < count; j += 2) {
    uint16_t *dst = pairs + (int64_t) j * head_dim;
    const float *v0 = values + (int64_t) j * head_dim;
    for (int32_t d0 = 0; d0 < head_dim; d0 += 16) {
      uint16_t even[16], odd[16];
      bf16_store(even, _mm512_loadu_ps(v0 + d0));
      bf16_store(odd, j + 1 < count ? _mm512_loadu_ps(v0 + head_dim + d0) : _mm512_setzero_ps());
      for (int i = 0; i < 16; i++) {
        dst[2 * (d0 + i)] = even[i];
        dst[2 * (d0 + i) + 1] = odd[i];
      }
    }
  }
}

/* e^x for x <= 0 (scores minus their max), for weights rounded to BF16 next: x = n ln 2 + r with
 * |r| <= ln 2 / 2 (one constant for ln 2: r is off by up to 125 x 2.3e-8), e^r by its Taylor
 * polynomial of degree 5 (relative error under 3.5e-6), times 2^n by scalef; below -87, 0 or a
 * subnormal. Relative error under 1e-5 (3.3e-6 measured over [-87, 0] in steps of 1e-5), a
 * two-hundredth of BF16's half step; Cephes' expf polynomial
 * (two constants for ln 2, degree 7) took 5% longer in the kernel. */
__attribute__((target(BF16), always_inline)) static inline __m512 exp_nonpositive(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-87.0f));
  __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693147180559945f), x);
  __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(1.0f / 120), r, _mm512_set1_ps(1.0f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

/* acc[r] (hv vectors of 16 dimensions from d0) = acc[r] * rescale[r] + the block's weights times
 * its values, pairs of keys at a time; hv is 4 in the hot loop, less for a head's last dimensions */
__attribute__((target(BF16), always_inline)) static inline void weighted_values(float *acc, int32_t head_dim,
    int32_t d0, int hv, const float *rescale, const uint16_t *p, const uint16_t *pairs, int32_t block_keys) {
  __m512 a[ATTENTION_ROWS][4];
#pragma GCC unroll 24
  for (int r = 0; r < ATTENTION_ROWS; r++) {
    __m512 rs = _mm512_set1_ps(rescale[r]);
    for (int c = 0; c < 4; c++) {
      a[r][c] = c < hv ? _mm512_mul_ps(_mm512_loadu_ps(acc + r * head_dim + d0 + 16 * c), rs) : _mm512_setzero_ps();
    }
  }
  for (int32_t j = 0; j < block_keys; j += 2) {
    const uint16_t *vj = pairs + (int64_t) j * head_dim + 2 * d0;
    __m512bh v[4];
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++) {
      v[c] = c < hv ? (__m512bh) _mm512_loadu_si512(vj + 32 * c) : (__m512bh) _mm512_setzero_si512();
    }
#pragma GCC unroll 24
    for (int r = 0; r < ATTENTION_ROWS; r++) {
      int32_t pair;
      memcpy(&pair, p + r * KEY_BLOCK + j, 4);
      __m512bh w = (__m512bh) _mm512_set1_epi32(pair);
      a[r][0] = _mm512_dpbf16_ps(a[r][0], v[0], w);
      a[r][1] = hv > 1 ? _mm512_dpbf16_ps(a[r][1], v[1], w) : a[r][1];
      a[r][2] = hv > 2 ? _mm512_dpbf16_ps(a[r][2], v[2], w) : a[r][2];
      a[r][3] = hv > 3 ? _mm512_dpbf16_ps(a[r][3], v[3], w) : a[r][3];
    }
  }
#pragma GCC unroll 24
  for (int r = 0; r < ATTENTION_ROWS; r++) {
    for (int c = 0; c < hv; c++) {
      _mm512_storeu_ps(acc + r * head_dim + d0 + 16 * c, a[r][c]);
    }
  }
}

/*
 * Softmax attention of `rows` query rows of one kv head: row r's query at q + q_rows[r] (head_dim
 * floats, a multiple of 16), seeing keys [0, visible[r]) of the key tiles and value pairs; its
 * output, the softmax-weighted sum of values, to out + out_rows[r]. Rows go ATTENTION_ROWS at a
 * time over blocks of 64 keys, each row keeping a running max and sum (online softmax). scratch:
 * owlery_attention_bf16_scratch(rows, head_dim) floats.
 */
__attribute__((target(BF16))) void owlery_attention_bf16(const float *q, const int32_t *q_rows,
    const int32_t *visible, int32_t rows, int32_t head_dim, const uint16_t *key_tiles, const uint16_t *value_pairs,
    float scale, float *out, const int32_t *out_rows, float *scratch) {
  int32_t padded = (rows + ATTENTION_ROWS - 1) / ATTENTION_ROWS * ATTENTION_ROWS;
  float *acc = scratch;                                            /* padded x head_dim */
  float *row_max = acc + (int64_t) padded * head_dim;              /* padded */
  float *row_sum = row_max + padded;                               /* padded */
  uint16_t *p = (uint16_t *) (row_sum + padded);                   /* ATTENTION_ROWS x KEY_BLOCK */
  uint16_t *qb = p + ATTENTION_ROWS * KEY_BLOCK;                   /* ATTENTION_ROWS x head_dim */
  memset(acc, 0, sizeof(float) * padded * head_dim);
  for (int32_t r = 0; r < padded; r++) {
    row_max[r] = -__builtin_inff();
    row_sum[r] = 0.0f;
  }
  __m512 scale_v = _mm512_set1_ps(scale);
  __m512 minus_inf = _mm512_set1_ps(-__builtin_inff());
  /* group by group, each through the key blocks it sees (key blocks outermost, each block's keys and
   * values kept in L1 for every group, measured 25% slower) */
  for (int32_t g = 0; g < rows; g += ATTENTION_ROWS) {
    int32_t vis[ATTENTION_ROWS];
    int32_t group_visible = 0;
    for (int r = 0; r < ATTENTION_ROWS; r++) {
      /* a group's missing rows repeat its last row, seeing nothing (their results are dropped) */
      int32_t row = g + r < rows ? g + r : rows - 1;
      vis[r] = g + r < rows ? visible[row] : 0;
      group_visible = vis[r] > group_visible ? vis[r] : group_visible;
      for (int32_t d0 = 0; d0 < head_dim; d0 += 16) {
        bf16_store(qb + r * head_dim + d0, _mm512_loadu_ps(q + q_rows[row] + d0));
      }
    }
    float *group_acc = acc + (int64_t) g * head_dim;
    for (int32_t k0 = 0; k0 < group_visible; k0 += KEY_BLOCK) {
      const uint16_t *tile = key_tiles + (int64_t) k0 * head_dim;
      __m512 s[ATTENTION_ROWS][4];
#pragma GCC unroll 24
      for (int r = 0; r < ATTENTION_ROWS; r++) {
        for (int c = 0; c < 4; c++) {
          s[r][c] = _mm512_setzero_ps();
        }
      }
      for (int32_t d = 0; d < head_dim; d += 2) {
        const uint16_t *kd = tile + (int64_t) d * KEY_BLOCK;
        __m512bh k[4];
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++) {
          k[c] = (__m512bh) _mm512_loadu_si512(kd + 32 * c);
        }
#pragma GCC unroll 24
        for (int r = 0; r < ATTENTION_ROWS; r++) {
          int32_t pair;
          memcpy(&pair, qb + r * head_dim + d, 4);
          __m512bh qd = (__m512bh) _mm512_set1_epi32(pair);
          s[r][0] = _mm512_dpbf16_ps(s[r][0], k[0], qd);
          s[r][1] = _mm512_dpbf16_ps(s[r][1], k[1], qd);
          s[r][2] = _mm512_dpbf16_ps(s[r][2], k[2], qd);
          s[r][3] = _mm512_dpbf16_ps(s[r][3], k[3], qd);
        }
      }
      int32_t block_keys = group_visible - k0 < KEY_BLOCK ? group_visible - k0 : KEY_BLOCK;
      int32_t n[ATTENTION_ROWS];
      __mmask16 m[ATTENTION_ROWS][4];
      float new_max[ATTENTION_ROWS];
      float shift[ATTENTION_ROWS];
#pragma GCC unroll 6
      for (int r = 0; r < ATTENTION_ROWS; r++) {
        n[r] = vis[r] - k0;
        n[r] = n[r] < 0 ? 0 : n[r] > KEY_BLOCK ? KEY_BLOCK : n[r];
        __m512 mx = minus_inf;
        for (int c = 0; c < 4; c++) {
          int32_t lanes = n[r] - 16 * c;
          lanes = lanes < 0 ? 0 : lanes > 16 ? 16 : lanes;
          m[r][c] = (__mmask16) ((1u << lanes) - 1);
          mx = _mm512_mask_max_ps(mx, m[r][c], mx, s[r][c]);
        }
        /* the scale is positive: the largest scaled score is the scaled largest score */
        float block_max = n[r] > 0 ? _mm512_reduce_max_ps(mx) * scale : -__builtin_inff();
        float old_max = row_max[g + r];
        new_max[r] = old_max > block_max ? old_max : block_max;
        shift[r] = new_max[r] == -__builtin_inff() ? 0.0f : old_max - new_max[r];
      }
      /* the rows' rescale factors e^(old max - new max) in one exponential (0 before the first key) */
      float rescale[16] __attribute__((aligned(64)));
      _mm512_store_ps(rescale, exp_nonpositive(_mm512_maskz_loadu_ps((1u << ATTENTION_ROWS) - 1, shift)));
#pragma GCC unroll 6
      for (int r = 0; r < ATTENTION_ROWS; r++) {
        uint16_t *pr = p + r * KEY_BLOCK;
        if (n[r] == 0) {
          memset(pr, 0, KEY_BLOCK * sizeof(uint16_t));
          continue;
        }
        __m512 nm = _mm512_set1_ps(new_max[r]);
        __m512 sum = _mm512_setzero_ps();
        for (int c = 0; c < 4; c++) {
          /* the weights as the values' product sees them: rounded to BF16, and summed so */
          __m256bh e = _mm512_cvtneps_pbh(
              _mm512_maskz_mov_ps(m[r][c], exp_nonpositive(_mm512_fmsub_ps(s[r][c], scale_v, nm))));
          _mm256_storeu_si256((__m256i *) (pr + 16 * c), (__m256i) e);
          sum = _mm512_add_ps(sum, _mm512_cvtpbh_ps(e));
        }
        row_max[g + r] = new_max[r];
        row_sum[g + r] = row_sum[g + r] * rescale[r] + _mm512_reduce_add_ps(sum);
      }
      const uint16_t *pairs = value_pairs + (int64_t) k0 * head_dim;
      int32_t d0 = 0;
      for (; d0 + 64 <= head_dim; d0 += 64) {
        weighted_values(group_acc, head_dim, d0, 4, rescale, p, pairs, block_keys);
      }
      if (d0 < head_dim) {
        weighted_values(group_acc, head_dim, d0, (head_dim - d0) / 16, rescale, p, pairs, block_keys);
      }
    }
  }
  for (int32_t r = 0; r < rows; r++) {
    __m512 inverse = _mm512_set1_ps(1.0f / row_sum[r]);
    for (int32_t d0 = 0; d0 < head_dim; d0 += 16) {
      _mm512_storeu_ps(out + out_rows[r] + d0,
          _mm512_mul_ps(_mm512_loadu_ps(acc + (int64_t) r * head_dim + d0), inverse));
    }
  }
}

/* The floats of scratch owlery_attention_bf16 needs for `rows` rows of head_dim. */
int64_t owlery_attention_bf16_scratch(int32_t rows, int32_t head_dim) {
  int64_t padded = (rows + ATTENTION_ROWS - 1) / ATTENTION_ROWS * ATTENTION_ROWS;
  return padded * (head_dim + 2) + ATTENTION_ROWS * (KEY_BLOCK + head_dim) / 2;
}

/*
 * BF16 products of many tokens in BF16 arithmetic (native-bf16's prompts): out[t * out_stride + r] =
 * row r of the BF16 matrix w (rows of `cols` halves, a multiple of 32, `stride` bytes apart) times
 * token t's activations rounded to BF16 (row t of xb, `cols` halves, by owlery_bf16_round). Groups
 * of DP_ROWS rows by DP_TOKENS tokens as in half_matmul, but per 32 columns: vdpbf16ps adds
 * each lane's two neighbouring products (columns 2i and 2i + 1 of the 32) to its float sum, so
 * row-major rows and tokens pair up as they are; each sum then _mm512_reduce_add_ps.
 */
/* 6 rows by 4 tokens: one thread, 4096 x 2048 by 128 tokens, 329 GFLOP/s (4 x 6: 284, 5 x 5: 313, 8 x 2:
 * 187; half_matmul on float activations 153, in the same sitting). */
#define DP_ROWS 6
#define DP_TOKENS 4
__attribute__((target(BF16))) void owlery_bf16_matmul_dp(const uint8_t *w, int64_t stride, int32_t rows,
    int32_t cols, const uint16_t *xb, int32_t tokens, float *out, int64_t out_stride) {
  for (int32_t r0 = 0; r0 < rows; r0 += DP_ROWS) {
    const uint16_t *row[DP_ROWS];
    for (int r = 0; r < DP_ROWS; r++) {
      row[r] = (const uint16_t *) (w + (int64_t) (r0 + r < rows ? r0 + r : rows - 1) * stride);
    }
    for (int32_t t0 = 0; t0 < tokens; t0 += DP_TOKENS) {
      const uint16_t *token[DP_TOKENS];
      for (int t = 0; t < DP_TOKENS; t++) {
        token[t] = xb + (int64_t) (t0 + t < tokens ? t0 + t : tokens - 1) * cols;
      }
      __m512 acc[DP_ROWS][DP_TOKENS];
#pragma GCC unroll 32
      for (int r = 0; r < DP_ROWS; r++) {
        for (int t = 0; t < DP_TOKENS; t++) {
          acc[r][t] = _mm512_setzero_ps();
        }
      }
      for (int32_t c = 0; c < cols; c += 32) {
        __m512bh weights[DP_ROWS];
#pragma GCC unroll 8
        for (int r = 0; r < DP_ROWS; r++) {
          weights[r] = (__m512bh) _mm512_loadu_si512(row[r] + c);
        }
#pragma GCC unroll 8
        for (int t = 0; t < DP_TOKENS; t++) {
          __m512bh xv = (__m512bh) _mm512_loadu_si512(token[t] + c);
#pragma GCC unroll 8
          for (int r = 0; r < DP_ROWS; r++) {
            acc[r][t] = _mm512_dpbf16_ps(acc[r][t], weights[r], xv);
          }
        }
      }
      for (int r = 0; r < DP_ROWS && r0 + r < rows; r++) {
        for (int t = 0; t < DP_TOKENS && t0 + t < tokens; t++) {
          out[(int64_t) (t0 + t) * out_stride + r0 + r] = _mm512_reduce_add_ps(acc[r][t]);
        }
      }
    }
  }
}

/* n floats (a multiple of 32) rounded to BF16, to nearest even (vcvtne2ps2bf16), in order. */
__attribute__((target(BF16))) void owlery_bf16_round(const float *x, int64_t n, uint16_t *out) {
  for (int64_t i = 0; i < n; i += 32) {
    __m512bh pair = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(x + i));
    _mm512_storeu_si512(out + i, (__m512i) pair);
  }
}
