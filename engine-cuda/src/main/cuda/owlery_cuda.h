// The few CUDA builtins the kernels use, declared by hand: the build compiles with clang-19 and
// -nocudainc -nocudalib (no CUDA toolkit, no libdevice), so nothing comes from cuda_runtime.h.
// Only plain CUDA is used (sm_80 level: mma.sync, cvt to bf16); nothing needs sm_90 itself.
//
// The target-specific primitives (thread indices, barriers, shuffles, loads, rounding, mma) have a
// second definition for a CPU run of the same kernels (OWL_EMULATE, engine-cuda/src/test/cuda:
// every CUDA thread a fiber, run by scripts/emulate-kernels.sh); everything else is shared.
#pragma once

typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;

typedef int owl_int4 __attribute__((ext_vector_type(4)));
typedef float owl_float4 __attribute__((ext_vector_type(4)));

struct u32x4 {
  u32 x, y, z, w;
};

#define FULL_MASK 0xffffffffu

#ifdef OWL_EMULATE
#include <owl_emulate.h>
#else

#define __global__ __attribute__((global))
#define __device__ __attribute__((device))
#define __shared__ __attribute__((shared))
#define OWL_INLINE __device__ static inline __attribute__((always_inline))
// Every kernel is extern "C" so that its PTX .entry name is the plain name the Java catalogue lists.
#define OWL_KERNEL extern "C" __global__ void
// Blocks of at most `threads`, at least `minBlocks` of them resident per SM: ptxas caps the registers to fit.
#define OWL_LAUNCH_BOUNDS(threads, minBlocks) __attribute__((launch_bounds(threads, minBlocks)))

OWL_INLINE int thread_x() { return __nvvm_read_ptx_sreg_tid_x(); }
OWL_INLINE int block_x() { return __nvvm_read_ptx_sreg_ctaid_x(); }
OWL_INLINE int block_y() { return __nvvm_read_ptx_sreg_ctaid_y(); }
OWL_INLINE int block_dim_x() { return __nvvm_read_ptx_sreg_ntid_x(); }
OWL_INLINE int grid_dim_x() { return __nvvm_read_ptx_sreg_nctaid_x(); }
OWL_INLINE void sync_threads() { __syncthreads(); }

// The value of v in lane (this lane ^ laneMask) of the warp; all 32 lanes take part.
OWL_INLINE float shfl_xor(float v, int laneMask) { return __nvvm_shfl_sync_bfly_f32(FULL_MASK, v, laneMask, 0x1f); }

// IEEE round-to-nearest square root and division (what the CPU's Java code computes), spelled out
// so that no fast-math default turns them into approximations.
OWL_INLINE float sqrt_rn(float x) { return __nvvm_sqrt_rn_f(x); }
OWL_INLINE float div_rn(float a, float b) { return __nvvm_div_rn_f(a, b); }

// A product and a sum each rounded on its own (mul.rn, add.rn): neither clang nor ptxas may fuse
// them into an fma, for the places that must match the CPU's Java arithmetic bit for bit.
OWL_INLINE float mul_rn(float a, float b) { return __nvvm_mul_rn_f(a, b); }
OWL_INLINE float add_rn(float a, float b) { return __nvvm_add_rn_f(a, b); }

// e^x through the hardware 2^x (ex2.approx, about 2 ulp): there is no libdevice expf here.
OWL_INLINE float exp_approx(float x) { return __nvvm_ex2_approx_f(x * 1.4426950408889634f); }

// 16-byte loads with ld.global.nc.v4 through the read-only data path: only for memory no thread
// writes during the kernel (weights, the kernel's inputs). p must be 16-byte aligned (callers check).
OWL_INLINE u32x4 load16(const void* p) {
  owl_int4 v = __nvvm_ldg_i4((const owl_int4*) p);
  return u32x4{(u32) v.x, (u32) v.y, (u32) v.z, (u32) v.w};
}

OWL_INLINE owl_float4 load16f(const float* p) { return __nvvm_ldg_f4((const owl_float4*) p); }

// The block's dynamic shared memory (its size is the launch's sharedMemBytes), 16-byte aligned.
#define OWL_DYNAMIC_SHARED extern __shared__ __attribute__((aligned(16))) unsigned char owl_dynamic_shared[]

// cp.async (sm_80+): a 16-byte copy from global to shared memory that the thread does not wait for;
// the copies issued since the last commit form a group, and cp_async_wait<N> waits until at most N
// of this thread's groups are still in flight. Both addresses 16-byte aligned (callers check src).
OWL_INLINE void cp_async16(void* sharedDst, const void* globalSrc) {
  u32 dst = (u32) (u64) (void __attribute__((address_space(3)))*) sharedDst; // cvta.to.shared
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(dst), "l"(globalSrc) : "memory");
}

OWL_INLINE void cp_async_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }

template <int N>
OWL_INLINE void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory");
}

// d[0..3] += A B for one m16n8k16 tile of the warp, float32 accumulators; a holds this lane's four
// 32-bit registers of A (two 16-bit elements each), b its two of B (layouts in gemm.cu).
OWL_INLINE void mma_f16(float* d, const u32* a, const u32* b) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

OWL_INLINE void mma_bf16(float* d, const u32* a, const u32* b) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

#endif

// Sum over the 32 lanes of a warp; every lane receives the total (butterfly exchange).
OWL_INLINE float warp_sum(float v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += shfl_xor(v, offset);
  return v;
}

OWL_INLINE float warp_max(float v) {
  for (int offset = 16; offset > 0; offset >>= 1) v = __builtin_fmaxf(v, shfl_xor(v, offset));
  return v;
}

// ---- half and bfloat16 conversions (bit patterns held in u16) ----
// Through clang's _Float16 and __bf16 types rather than inline asm: clang treats inline asm as
// convergent, which stops it from unrolling the loops these sit in. They compile to cvt.f32.f16,
// cvt.rn.f16.f32 and cvt.rn.bf16.f32.

OWL_INLINE float f16_to_f32(u16 h) { return (float) __builtin_bit_cast(_Float16, h); }

// Round to nearest even, as Java's Float.floatToFloat16 does; beyond +-65504 gives +-inf.
OWL_INLINE u16 f32_to_f16(float f) { return __builtin_bit_cast(u16, (_Float16) f); }

// bfloat16 is the upper half of a float32: widening is a shift.
OWL_INLINE float bf16_to_f32(u16 b) { return __builtin_bit_cast(float, ((u32) b) << 16); }

// Round to nearest even (cvt.rn.bf16.f32, sm_80+).
OWL_INLINE u16 f32_to_bf16(float f) { return __builtin_bit_cast(u16, (__bf16) f); }

OWL_INLINE bool aligned16(const void* p) { return (((u64) p) & 15) == 0; }

// The two halves of a u32 holding two 16-bit elements, element 0 in the low half (little endian).
OWL_INLINE u16 low16(u32 v) { return (u16) (v & 0xffff); }
OWL_INLINE u16 high16(u32 v) { return (u16) (v >> 16); }
