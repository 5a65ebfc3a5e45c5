/*
 * Owlery's decode matrix-vector products in C: the two things the Vector API cannot express and
 * decode at the memory limit needs (docs/design-notes.md, "Native decode kernels"):
 *   - an int8 x int8 dot product (AVX-512 VNNI's vpdpbusd; AVX2's vpmaddubsw + vpmaddwd otherwise),
 *     for Q8_0 weights times activations quantized to Q8_0, as llama.cpp multiplies them;
 *   - software prefetch, over four rows read in lockstep a quarter of the call's rows apart.
 * Compiled on the machine that runs it (NativeCpuLibrary: cc -O2 -ffp-contract=off -shared), with
 * every instruction set named per function, so the library loads on any x86-64 and
 * owlery_cpu_features says which entry points this CPU can run.
 *
 * Arithmetic (NativeReference in the tests restates it in Java, bit for bit):
 *   Q8_0 row r: eight float lanes; for block b, lane j += float(sum over the block's bytes 4j..4j+3
 *   of q * x) * (f16(row scale) * x scale[b]) as one fused multiply-add; the sum is then
 *   ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)).
 */
#include <immintrin.h>
#include <stdint.h>

#define Q8_0_BLOCK_BYTES 34
/* How far ahead each of the four streams prefetches: 1 KiB measured 12.4-13.3 GB/s for four
 * Q8_0 streams on the AMX host, against 9.4 without prefetch (docs/design-notes.md). */
#define PREFETCH_BYTES 1024

enum { FEATURE_AVX2 = 1, FEATURE_AVX512_VNNI = 2, FEATURE_AVX512 = 4 };

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

/* One block's eight int32 lane sums, |q| (unsigned, so -128 is 128) times x signed as q. */
__attribute__((target(VNNI), always_inline)) static inline __m256i dot_vnni(const uint8_t *block, __m256i x) {
  __m256i q = _mm256_loadu_si256((const __m256i *) (block + 2));
  return _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_abs_epi8(q), _mm256_sign_epi8(x, q));
}

/* The same sums on AVX2: pairs into int16 (at most 2 * 128 * 127, no saturation), then pairs of those. */
__attribute__((target(AVX2), always_inline)) static inline __m256i dot_avx2(const uint8_t *block, __m256i x) {
  __m256i q = _mm256_loadu_si256((const __m256i *) (block + 2));
  __m256i pairs = _mm256_maddubs_epi16(_mm256_abs_epi8(q), _mm256_sign_epi8(x, q));
  return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
}

/*
 * out[r] = row r of the Q8_0 matrix w (rows of `blocks` blocks, `stride` bytes apart) times the
 * activations xq (int8, blocks * 32) with one float scale per block in xd. Rows i, i + n/4,
 * i + n/2 and i + 3n/4 are read together, each stream prefetched ahead; the last n % 4 alone.
 */
#define Q8_0_MATVEC(NAME, TARGET, DOT)                                                                  \
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
        int64_t at = (int64_t) b * Q8_0_BLOCK_BYTES;                                                    \
        _mm_prefetch((const char *) r0 + at + PREFETCH_BYTES, _MM_HINT_T0);                              \
        _mm_prefetch((const char *) r1 + at + PREFETCH_BYTES, _MM_HINT_T0);                              \
        _mm_prefetch((const char *) r2 + at + PREFETCH_BYTES, _MM_HINT_T0);                              \
        _mm_prefetch((const char *) r3 + at + PREFETCH_BYTES, _MM_HINT_T0);                              \
        __m256i x = _mm256_loadu_si256((const __m256i *) (xq + 32 * b));                                \
        a0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(DOT(r0 + at, x)), _mm256_set1_ps(block_scale(r0 + at, xd[b])), a0); \
        a1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(DOT(r1 + at, x)), _mm256_set1_ps(block_scale(r1 + at, xd[b])), a1); \
        a2 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(DOT(r2 + at, x)), _mm256_set1_ps(block_scale(r2 + at, xd[b])), a2); \
        a3 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(DOT(r3 + at, x)), _mm256_set1_ps(block_scale(r3 + at, xd[b])), a3); \
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
        int64_t at = (int64_t) b * Q8_0_BLOCK_BYTES;                                                    \
        _mm_prefetch((const char *) row + at + PREFETCH_BYTES, _MM_HINT_T0);                             \
        __m256i x = _mm256_loadu_si256((const __m256i *) (xq + 32 * b));                                \
        a = _mm256_fmadd_ps(_mm256_cvtepi32_ps(DOT(row + at, x)), _mm256_set1_ps(block_scale(row + at, xd[b])), a); \
      }                                                                                                 \
      out[r] = sum_lanes(a);                                                                            \
    }                                                                                                   \
  }

Q8_0_MATVEC(owlery_q8_0_matvec_vnni, VNNI, dot_vnni)
Q8_0_MATVEC(owlery_q8_0_matvec_avx2, AVX2, dot_avx2)

__attribute__((target(AVX512), always_inline)) static inline __m512 f16_load(const uint16_t *p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *) p));
}

/*
 * out[r] = row r of the F16 matrix w (rows of `cols` halves, a multiple of 32, `stride` bytes apart)
 * times the float activations x, four rows a quarter apart read together as in the Q8_0 kernel. Per
 * row two 16-lane accumulators (columns 32c..32c+15 and 32c+16..32c+31), added lane by lane, then
 * _mm512_reduce_add_ps.
 */
__attribute__((target(AVX512))) void owlery_f16_matvec_avx512(const uint8_t *w, int64_t stride, int32_t rows,
    int32_t cols, const float *x, float *out) {
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
      a0 = _mm512_fmadd_ps(f16_load((const uint16_t *) (r0 + at)), xa, a0);
      b0 = _mm512_fmadd_ps(f16_load((const uint16_t *) (r0 + at) + 16), xb, b0);
      a1 = _mm512_fmadd_ps(f16_load((const uint16_t *) (r1 + at)), xa, a1);
      b1 = _mm512_fmadd_ps(f16_load((const uint16_t *) (r1 + at) + 16), xb, b1);
      a2 = _mm512_fmadd_ps(f16_load((const uint16_t *) (r2 + at)), xa, a2);
      b2 = _mm512_fmadd_ps(f16_load((const uint16_t *) (r2 + at) + 16), xb, b2);
      a3 = _mm512_fmadd_ps(f16_load((const uint16_t *) (r3 + at)), xa, a3);
      b3 = _mm512_fmadd_ps(f16_load((const uint16_t *) (r3 + at) + 16), xb, b3);
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
      a = _mm512_fmadd_ps(f16_load((const uint16_t *) (row + at)), _mm512_loadu_ps(x + c), a);
      b = _mm512_fmadd_ps(f16_load((const uint16_t *) (row + at) + 16), _mm512_loadu_ps(x + c + 16), b);
    }
    out[r] = _mm512_reduce_add_ps(_mm512_add_ps(a, b));
  }
}
