// The target primitives of owlery_cuda.h for a CPU run of the kernels (OWL_EMULATE): each CUDA thread
// of a block is a fiber (ucontext) of one OS thread; a fiber runs until it waits at a barrier (block
// barrier, or the warp-wide exchange a shuffle or an mma needs) and the scheduler resumes the others.
// Blocks run one after another, so a kernel's `static` (for __shared__) locals are its block's shared
// memory. This checks the kernels' index arithmetic, bounds and barriers on the CPU; it says nothing
// about the GPU's timing, memory model or the real instruction semantics, which it models:
// shuffles as exchanges, ex2.approx as exp2f, mma.sync from the PTX ISA's fragment layout.
#pragma once

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#define __global__
#define __device__
#define __shared__ static
#define OWL_INLINE static inline
#define OWL_KERNEL extern "C" void
#define OWL_LAUNCH_BOUNDS(threads, minBlocks)

namespace owl_emu {

struct Barrier {
  int expected;
  int arrived;
  long generation;
};

struct ThreadState {
  int tid;
};

// Set by the launcher (emulate_kernels.cpp) for the block being run and the fiber being resumed.
extern int blockX, blockY, blockDimX, gridDimX;
extern ThreadState* current;
extern Barrier blockBarrier;
extern Barrier warpBarriers[32];
extern float warpSlots[32][32];
extern u32 warpFragments[32][32][6]; // per warp, per lane: a[0..3], b[0..1] of an mma
void yield();

inline void wait(Barrier& b) {
  long generation = b.generation;
  if (++b.arrived == b.expected) {
    b.arrived = 0;
    b.generation++;
    return;
  }
  while (b.generation == generation) yield();
}

} // namespace owl_emu

OWL_INLINE int thread_x() { return owl_emu::current->tid; }
OWL_INLINE int block_x() { return owl_emu::blockX; }
OWL_INLINE int block_y() { return owl_emu::blockY; }
OWL_INLINE int block_dim_x() { return owl_emu::blockDimX; }
OWL_INLINE int grid_dim_x() { return owl_emu::gridDimX; }
OWL_INLINE void sync_threads() { owl_emu::wait(owl_emu::blockBarrier); }

OWL_INLINE float shfl_xor(float v, int laneMask) {
  int warp = thread_x() >> 5;
  int lane = thread_x() & 31;
  owl_emu::warpSlots[warp][lane] = v;
  owl_emu::wait(owl_emu::warpBarriers[warp]);
  float other = owl_emu::warpSlots[warp][lane ^ laneMask];
  owl_emu::wait(owl_emu::warpBarriers[warp]); // nobody overwrites a slot before every lane has read
  return other;
}

OWL_INLINE float sqrt_rn(float x) { return std::sqrt(x); }
OWL_INLINE float div_rn(float a, float b) { return a / b; }
OWL_INLINE float mul_rn(float a, float b) { return a * b; }
OWL_INLINE float add_rn(float a, float b) { return a + b; }
OWL_INLINE float exp_approx(float x) { return std::exp2(x * 1.4426950408889634f); }

// A misaligned 16-byte load faults on the GPU: here it stops the run.
OWL_INLINE void owl_check_aligned16(const void* p) {
  if (((u64) p) & 15) {
    std::fprintf(stderr, "misaligned 16-byte load at %p\n", p);
    std::abort();
  }
}

OWL_INLINE u32x4 load16(const void* p) {
  owl_check_aligned16(p);
  u32x4 v;
  std::memcpy(&v, p, 16);
  return v;
}

OWL_INLINE owl_float4 load16f(const float* p) {
  owl_check_aligned16(p);
  owl_float4 v;
  std::memcpy(&v, p, 16);
  return v;
}

// The block's dynamic shared memory: one buffer, as blocks run one after another (256 KiB covers the
// 227 KiB a block can have).
#define OWL_DYNAMIC_SHARED alignas(16) static unsigned char owl_dynamic_shared[256 * 1024]

// cp.async done at once: a valid order of the real asynchronous copy, which the barriers make visible.
OWL_INLINE void cp_async16(void* sharedDst, const void* globalSrc) {
  owl_check_aligned16(sharedDst);
  owl_check_aligned16(globalSrc);
  std::memcpy(sharedDst, globalSrc, 16);
}

OWL_INLINE void cp_async_commit() {}

template <int N>
OWL_INLINE void cp_async_wait() {}

// mma.sync.m16n8k16.row.col with float32 accumulators, from the fragment layout of the PTX ISA
// (gemm.cu spells it out): every lane posts its A and B registers, then computes its own four D
// elements from the whole warp's. Products of two 16-bit values are exact in float32.
template <float (*widen)(u16)>
OWL_INLINE void mma_emulated(float* d, const u32* a, const u32* b) {
  int warp = thread_x() >> 5;
  int lane = thread_x() & 31;
  u32* mine = owl_emu::warpFragments[warp][lane];
  for (int i = 0; i < 4; i++) mine[i] = a[i];
  mine[4] = b[0];
  mine[5] = b[1];
  owl_emu::wait(owl_emu::warpBarriers[warp]);
  int g = lane >> 2;
  int c = lane & 3;
  for (int i = 0; i < 4; i++) {
    int row = g + (i >= 2 ? 8 : 0);
    int col = 2 * c + (i & 1);
    float sum = 0.f;
    for (int k = 0; k < 16; k++) {
      // A(row, k): lane (row % 8) * 4 + (k % 8) / 2, register (row >= 8) + 2 (k >= 8), half k % 2
      const u32* aLane = owl_emu::warpFragments[warp][(row % 8) * 4 + (k % 8) / 2];
      u32 aReg = aLane[(row >= 8 ? 1 : 0) + (k >= 8 ? 2 : 0)];
      // B(k, col): lane col * 4 + (k % 8) / 2, register (k >= 8), half k % 2
      const u32* bLane = owl_emu::warpFragments[warp][col * 4 + (k % 8) / 2];
      u32 bReg = bLane[4 + (k >= 8 ? 1 : 0)];
      float av = widen((u16) (k % 2 ? aReg >> 16 : aReg & 0xffff));
      float bv = widen((u16) (k % 2 ? bReg >> 16 : bReg & 0xffff));
      sum += av * bv;
    }
    d[i] += sum;
  }
  owl_emu::wait(owl_emu::warpBarriers[warp]);
}

OWL_INLINE float owl_emu_f16(u16 h) { return (float) __builtin_bit_cast(_Float16, h); }
OWL_INLINE float owl_emu_bf16(u16 b) { return __builtin_bit_cast(float, ((u32) b) << 16); }
OWL_INLINE void mma_f16(float* d, const u32* a, const u32* b) { mma_emulated<owl_emu_f16>(d, a, b); }
OWL_INLINE void mma_bf16(float* d, const u32* a, const u32* b) { mma_emulated<owl_emu_bf16>(d, a, b); }
