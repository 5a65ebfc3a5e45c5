// Runs every kernel of engine-cuda/src/main/cuda on the CPU (owl_emulate.h: each CUDA thread a fiber)
// at odd sizes and compares it with a plain float64 loop written from the kernel's source comment.
// The Java KernelCheck holds the kernels to the engine on a GPU; this holds their index arithmetic,
// bounds and barriers to their contract where there is no GPU. Built and run by
// scripts/emulate-kernels.sh; exits 1 when a case fails.
#define OWL_EMULATE 1
#include "../../main/cuda/elementwise.cu"
#include "../../main/cuda/gemv.cu"
#include "../../main/cuda/gemm.cu"
#include "../../main/cuda/attention.cu"
#include "../../main/cuda/vision.cu"

#include <ucontext.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <vector>

// float32 to bfloat16, round to nearest even: the compiler calls this for (__bf16) f on x86, and
// Debian's libgcc 12 lacks it (NaN is not produced by the cases).
extern "C" __bf16 __truncsfbf2(float f) {
  u32 b = __builtin_bit_cast(u32, f);
  return __builtin_bit_cast(__bf16, (u16) ((b + 0x7fff + ((b >> 16) & 1)) >> 16));
}

namespace owl_emu {
int blockX, blockY, blockDimX, gridDimX;
ThreadState* current;
Barrier blockBarrier;
Barrier warpBarriers[32];
float warpSlots[32][32];
u32 warpFragments[32][32][6];

static ucontext_t scheduler;
struct Fiber {
  ucontext_t context;
  ThreadState state;
  bool done;
  std::vector<char> stack;
};
static Fiber* running;
static const std::function<void()>* body;

void yield() { swapcontext(&running->context, &scheduler); }

static void fiberMain() {
  (*body)();
  running->done = true;
  swapcontext(&running->context, &scheduler);
}

// Runs kernel on a gridX x gridY grid of blockDim threads, one block after another.
static void launch(int gridX, int gridY, int blockDim, const std::function<void()>& kernel) {
  std::vector<Fiber> fibers(blockDim);
  for (auto& f : fibers) f.stack.resize(256 * 1024);
  for (int by = 0; by < gridY; by++) {
    for (int bx = 0; bx < gridX; bx++) {
      blockX = bx;
      blockY = by;
      blockDimX = blockDim;
      gridDimX = gridX;
      blockBarrier = Barrier{blockDim, 0, 0};
      for (int w = 0; w < 32; w++) warpBarriers[w] = Barrier{32, 0, 0};
      body = &kernel;
      for (int t = 0; t < blockDim; t++) {
        Fiber& f = fibers[t];
        f.state.tid = t;
        f.done = false;
        getcontext(&f.context);
        f.context.uc_stack.ss_sp = f.stack.data();
        f.context.uc_stack.ss_size = f.stack.size();
        f.context.uc_link = nullptr;
        makecontext(&f.context, fiberMain, 0);
      }
      for (bool any = true; any;) {
        any = false;
        for (auto& f : fibers) {
          if (f.done) continue;
          running = &f;
          current = &f.state;
          swapcontext(&scheduler, &f.context);
          any = true;
        }
      }
    }
  }
}
} // namespace owl_emu

using owl_emu::launch;

static std::mt19937_64 rng(20261204);
static std::vector<float> normal(size_t n, double sigma) {
  std::normal_distribution<double> d(0, sigma);
  std::vector<float> v(n);
  for (auto& x : v) x = (float) d(rng);
  return v;
}
static u64 ptr(const void* p) { return (u64) p; }
static u16 toF16(float f) { return __builtin_bit_cast(u16, (_Float16) f); }
static u16 toBF16(float f) { return __builtin_bit_cast(u16, (__bf16) f); }

static int failures = 0;
// |actual - expected| <= atol + rtol * scale for every value; reports the largest errors.
static void report(const std::string& name, const std::vector<float>& actual, const std::vector<double>& expected,
    const std::vector<double>& scale, double atol, double rtol) {
  double maxAbs = 0, maxRel = 0;
  long bad = 0, first = -1;
  for (size_t i = 0; i < expected.size(); i++) {
    double err = std::fabs((double) actual[i] - expected[i]);
    if (!(err <= atol + rtol * scale[i])) {
      bad++;
      if (first < 0) first = (long) i;
    }
    if (std::isnan(err)) err = INFINITY;
    maxAbs = std::max(maxAbs, err);
    if (scale[i] > 0) maxRel = std::max(maxRel, err / scale[i]);
  }
  std::printf("%s %-58s maxAbs %.3g maxRel %.3g (atol %.3g rtol %.3g)", bad ? "FAIL" : "PASS", name.c_str(), maxAbs,
      maxRel, atol, rtol);
  if (bad) std::printf(" %ld of %zu out, first %ld: %g vs %g", bad, expected.size(), first, actual[first], expected[first]);
  std::printf("\n");
  failures += bad ? 1 : 0;
}
static std::vector<double> magnitudes(const std::vector<double>& v) {
  std::vector<double> s(v.size());
  for (size_t i = 0; i < v.size(); i++) s[i] = std::fabs(v[i]);
  return s;
}
static int ceilDiv(int a, int b) { return (a + b - 1) / b; }

static void checkEmbedding(int kind) { // 0 f16, 1 bf16, 2 f32
  int vocab = 101, hidden = 77, tokens = 17;
  std::vector<float> values = normal((size_t) vocab * hidden, 1);
  std::vector<u16> halves(values.size());
  std::vector<double> widened(values.size());
  for (size_t i = 0; i < values.size(); i++) {
    halves[i] = kind == 0 ? toF16(values[i]) : toBF16(values[i]);
    widened[i] = kind == 0 ? f16_to_f32(halves[i]) : kind == 1 ? bf16_to_f32(halves[i]) : values[i];
  }
  std::vector<int> ids(tokens);
  for (int t = 0; t < tokens; t++) ids[t] = (t * 37 + 5) % vocab;
  ids[0] = 0;
  ids[1] = vocab - 1;
  std::vector<float> out((size_t) tokens * hidden);
  std::vector<double> expected(out.size());
  for (int t = 0; t < tokens; t++)
    for (int c = 0; c < hidden; c++) expected[(size_t) t * hidden + c] = widened[(size_t) ids[t] * hidden + c];
  const void* table = kind == 2 ? (const void*) values.data() : (const void*) halves.data();
  launch(tokens, 1, 256, [&] {
    if (kind == 0) embedding_f16(ptr(out.data()), ptr(table), ptr(ids.data()), hidden, vocab);
    if (kind == 1) embedding_bf16(ptr(out.data()), ptr(table), ptr(ids.data()), hidden, vocab);
    if (kind == 2) embedding_f32(ptr(out.data()), ptr(table), ptr(ids.data()), hidden, vocab);
  });
  const char* names[] = {"embedding_f16", "embedding_bf16", "embedding_f32"};
  report(std::string(names[kind]) + " vocab=101 hidden=77 tokens=17", out, expected, magnitudes(expected), 0, 0);
}

static void checkRmsNorm(int hidden, int numModalities, const std::vector<int>& modality) {
  int rows = (int) modality.size();
  std::vector<float> x = normal((size_t) rows * hidden, 2), w = normal((size_t) numModalities * hidden, 0.2);
  for (auto& v : w) v += 1;
  std::vector<float> out(x.size());
  std::vector<double> expected(x.size());
  for (int t = 0; t < rows; t++) {
    int m = numModalities == 1 ? 0 : modality[t];
    double ss = 0;
    for (int i = 0; i < hidden; i++) ss += (double) x[(size_t) t * hidden + i] * x[(size_t) t * hidden + i];
    double s = 1 / std::sqrt(ss / hidden + 1e-6);
    for (int i = 0; i < hidden; i++) expected[(size_t) t * hidden + i] = w[(size_t) m * hidden + i] * x[(size_t) t * hidden + i] * s;
  }
  launch(rows, 1, 256, [&] {
    rms_norm(ptr(out.data()), ptr(x.data()), ptr(w.data()), ptr(modality.data()), hidden, numModalities, 1e-6f);
  });
  report("rms_norm rows=" + std::to_string(rows) + " hidden=" + std::to_string(hidden) + " modalities="
      + std::to_string(numModalities), out, expected, magnitudes(expected), 0, 2.0 * hidden * 0x1p-24);
}

static void checkAddRmsNorm() {
  int hidden = 777, rows = 5;
  std::vector<int> modality = {1, 0, 0, 1, 0};
  std::vector<float> residual = normal((size_t) rows * hidden, 2), x = normal(residual.size(), 2),
      w = normal((size_t) 2 * hidden, 0.2), out(residual.size());
  for (auto& v : w) v += 1;
  std::vector<double> expected(2 * residual.size());
  for (int t = 0; t < rows; t++) {
    double ss = 0;
    for (int i = 0; i < hidden; i++) {
      float h = residual[(size_t) t * hidden + i] + x[(size_t) t * hidden + i];
      expected[(size_t) t * hidden + i] = h;
      ss += (double) h * h;
    }
    double s = 1 / std::sqrt(ss / hidden + 1e-6);
    for (int i = 0; i < hidden; i++)
      expected[residual.size() + (size_t) t * hidden + i] =
          w[(size_t) modality[t] * hidden + i] * expected[(size_t) t * hidden + i] * s;
  }
  launch(rows, 1, 256, [&] {
    add_rms_norm(ptr(out.data()), ptr(residual.data()), ptr(x.data()), ptr(w.data()), ptr(modality.data()), hidden, 2,
        1e-6f);
  });
  std::vector<float> actual(residual);
  actual.insert(actual.end(), out.begin(), out.end());
  report("add_rms_norm rows=5 hidden=777 modalities=2 (residual, then normed)", actual, expected,
      magnitudes(expected), 0, 2.0 * hidden * 0x1p-24);
}

static void checkRope() {
  int rows = 17, heads = 5, headDim = 24, half = 12, maxPos = 300;
  std::vector<float> cosT((size_t) maxPos * half), sinT(cosT.size());
  for (int j = 0; j < half; j++) {
    float inv = (float) (1.0 / (float) std::pow(10000.0, (double) ((float) (2 * j) / (float) headDim)));
    for (int p = 0; p < maxPos; p++) {
      cosT[(size_t) p * half + j] = (float) std::cos((double) ((float) p * inv));
      sinT[(size_t) p * half + j] = (float) std::sin((double) ((float) p * inv));
    }
  }
  std::vector<int> pos(rows);
  for (int t = 0; t < rows; t++) pos[t] = (t * 53) % maxPos;
  pos[1] = maxPos - 1;
  std::vector<float> x = normal((size_t) rows * heads * headDim, 1), out = x;
  std::vector<double> expected(x.size());
  for (int t = 0; t < rows; t++)
    for (int h = 0; h < heads; h++)
      for (int j = 0; j < half; j++) {
        size_t i = ((size_t) t * heads + h) * headDim + j;
        float c = cosT[(size_t) pos[t] * half + j], s = sinT[(size_t) pos[t] * half + j];
        expected[i] = x[i] * c + (-x[i + half]) * s; // float arithmetic, rounded per operation
        expected[i + half] = x[i + half] * c + x[i] * s;
        expected[i] = (float) ((float) (x[i] * c) + (float) (-x[i + half] * s));
        expected[i + half] = (float) ((float) (x[i + half] * c) + (float) (x[i] * s));
      }
  long pairs = (long) rows * heads * half;
  launch(ceilDiv((int) pairs, 256) > 2 ? 2 : 1, 1, 256, [&] {
    rope(ptr(out.data()), ptr(pos.data()), ptr(cosT.data()), ptr(sinT.data()), rows, heads, headDim, maxPos);
  });
  report("rope rows=17 heads=5 headDim=24 (grid of 2 blocks: grid-stride)", out, expected, magnitudes(expected), 0, 0);
}

static void checkSiluAndResidual() {
  int n = 1001;
  std::vector<float> g = normal(n, 3), u = normal(n, 1), out(n), y = normal(n, 1), y0 = y;
  std::vector<double> e1(n), e2(n);
  for (int i = 0; i < n; i++) {
    e1[i] = g[i] / (1 + std::exp(-(double) g[i])) * u[i];
    e2[i] = (float) (y[i] + u[i]);
  }
  launch(2, 1, 256, [&] { silu_mul(ptr(out.data()), ptr(g.data()), ptr(u.data()), n); });
  report("silu_mul n=1001 (2 blocks: grid-stride)", out, e1, magnitudes(e1), 1e-7, 1e-5);
  launch(3, 1, 256, [&] { residual_add(ptr(y.data()), ptr(u.data()), n); });
  report("residual_add n=1001", y, e2, magnitudes(e2), 0, 0);
}

// out[t, r] = sum_c W[r, c] x[t, c]; gemm rounds x to the weights' type first.
// misalignX: x starts one float past a 16-byte boundary, so the kernels must take their
// element-by-element path even where cols would allow 16-byte loads.
// gemmTile: 0 for the gemv kernels, 128 for gemm_*, 64 for gemm64_* (the tensor-core products);
// splits > 1: the GEMM cut along K (32-column multiples) into partials that gemm_split_sum adds.
static void checkMatmul(int kind, int gemmTile, int rows, int cols, int tokens, int tokensPerWarp = 1,
    bool misalignX = false, int splits = 1) { // kind 0 f16, 1 bf16, 2 f32
  bool tensorCores = gemmTile != 0;
  std::vector<float> wv = normal((size_t) rows * cols, 0.05), xStore = normal((size_t) tokens * cols + 1, 1);
  std::vector<float> x(xStore.begin() + (misalignX ? 1 : 0), xStore.begin() + (misalignX ? 1 : 0) + (size_t) tokens * cols);
  const float* xDevice = misalignX ? xStore.data() + 1 : x.data();
  if (misalignX) std::copy(x.begin(), x.end(), xStore.begin() + 1);
  std::vector<u16> wh(wv.size());
  std::vector<double> wd(wv.size());
  for (size_t i = 0; i < wv.size(); i++) {
    wh[i] = kind == 0 ? toF16(wv[i]) : toBF16(wv[i]);
    wd[i] = kind == 0 ? f16_to_f32(wh[i]) : kind == 1 ? bf16_to_f32(wh[i]) : wv[i];
  }
  std::vector<double> expected((size_t) tokens * rows), scale(expected.size());
  for (int t = 0; t < tokens; t++)
    for (int r = 0; r < rows; r++) {
      double sum = 0, abs = 0;
      for (int c = 0; c < cols; c++) {
        double xv = x[(size_t) t * cols + c];
        if (tensorCores) xv = kind == 0 ? f16_to_f32(toF16((float) xv)) : bf16_to_f32(toBF16((float) xv));
        sum += wd[(size_t) r * cols + c] * xv;
        abs += std::fabs(wd[(size_t) r * cols + c] * xv);
      }
      expected[(size_t) t * rows + r] = sum;
      scale[(size_t) t * rows + r] = abs;
    }
  std::vector<float> out(expected.size(), NAN);
  const void* w = kind == 2 ? (const void*) wv.data() : (const void*) wh.data();
  if (tokensPerWarp == 8) {
    launch(ceilDiv(rows, 8), ceilDiv(tokens, 8), 256, [&] {
      if (kind == 0) gemv8_f16(ptr(out.data()), ptr(w), ptr(xDevice), rows, cols, tokens);
      if (kind == 1) gemv8_bf16(ptr(out.data()), ptr(w), ptr(xDevice), rows, cols, tokens);
    });
  } else if (gemmTile != 0) {
    int kPerSplit = ceilDiv(ceilDiv(cols, splits), 32) * 32;
    int used = ceilDiv(cols, kPerSplit); // splits that hold columns
    std::vector<float> partials((size_t) used * tokens * rows, NAN);
    float* target = used > 1 ? partials.data() : out.data();
    launch(ceilDiv(rows, gemmTile), ceilDiv(tokens, gemmTile) * used, gemmTile == 128 ? 256 : 128, [&] {
      if (gemmTile == 128 && kind == 0) gemm_f16(ptr(target), ptr(w), ptr(xDevice), rows, cols, tokens, kPerSplit);
      if (gemmTile == 128 && kind == 1) gemm_bf16(ptr(target), ptr(w), ptr(xDevice), rows, cols, tokens, kPerSplit);
      if (gemmTile == 64 && kind == 0) gemm64_f16(ptr(target), ptr(w), ptr(xDevice), rows, cols, tokens, kPerSplit);
      if (gemmTile == 64 && kind == 1) gemm64_bf16(ptr(target), ptr(w), ptr(xDevice), rows, cols, tokens, kPerSplit);
    });
    if (used > 1) {
      launch(3, 1, 256, [&] { gemm_split_sum(ptr(out.data()), ptr(partials.data()), tokens * rows, used); });
    }
  } else {
    launch(ceilDiv(rows, 8), tokens, 256, [&] {
      if (kind == 0) gemv_f16(ptr(out.data()), ptr(w), ptr(xDevice), rows, cols);
      if (kind == 1) gemv_bf16(ptr(out.data()), ptr(w), ptr(xDevice), rows, cols);
      if (kind == 2) gemv_f32(ptr(out.data()), ptr(w), ptr(xDevice), rows, cols);
    });
  }
  const char* types[] = {"f16", "bf16", "f32"};
  report(std::string(gemmTile == 128 ? "gemm_" : gemmTile == 64 ? "gemm64_" : tokensPerWarp == 8 ? "gemv8_" : "gemv_") + types[kind] + " rows=" + std::to_string(rows) + " cols="
      + std::to_string(cols) + " tokens=" + std::to_string(tokens) + (misalignX ? " x misaligned" : "")
      + (splits > 1 ? " in " + std::to_string(splits) + " K splits" : ""), out, expected,
      scale, 0, 2.0 * cols * 0x1p-24);
}

struct Paged {
  int numBlocks, blockSize, numKvHeads, headDim;
  std::vector<std::vector<int>> tables;
  int maxBlocks() const {
    size_t m = 1;
    for (auto& t : tables) m = std::max(m, t.size());
    return (int) m;
  }
  std::vector<int> flat() const {
    std::vector<int> f(tables.size() * maxBlocks(), -1);
    for (size_t s = 0; s < tables.size(); s++) std::copy(tables[s].begin(), tables[s].end(), f.begin() + s * maxBlocks());
    return f;
  }
  size_t base(int seq, int pos) const { // element of (pos, kv head 0, d 0)
    return ((size_t) tables[seq][pos / blockSize] * blockSize + pos % blockSize) * numKvHeads * headDim;
  }
  size_t elements() const { return (size_t) numBlocks * blockSize * numKvHeads * headDim; }
};

static void checkKvAppend() {
  Paged p{12, 16, 3, 24, {{5, 2}, {7}, {0, 9, 4}}};
  std::vector<int> rowSeq = {0, 1}, rowPos = {17, 0};
  for (int i = 0; i < 17; i++) {
    rowSeq.push_back(2);
    rowPos.push_back(30 + i);
  }
  int rows = (int) rowSeq.size(), kvWidth = p.numKvHeads * p.headDim;
  std::vector<float> k = normal((size_t) rows * kvWidth, 1), v = normal(k.size(), 1);
  std::vector<u16> kPool(p.elements()), vPool(p.elements());
  std::vector<double> expected(2 * p.elements(), 0.0);
  for (int t = 0; t < rows; t++)
    for (int e = 0; e < kvWidth; e++) {
      expected[p.base(rowSeq[t], rowPos[t]) + e] = f16_to_f32(toF16(k[(size_t) t * kvWidth + e]));
      expected[p.elements() + p.base(rowSeq[t], rowPos[t]) + e] = f16_to_f32(toF16(v[(size_t) t * kvWidth + e]));
    }
  std::vector<int> tables = p.flat();
  launch(2, 1, 256, [&] {
    kv_append(ptr(kPool.data()), ptr(vPool.data()), ptr(k.data()), ptr(v.data()), ptr(tables.data()),
        ptr(rowSeq.data()), ptr(rowPos.data()), rows, p.numKvHeads, p.headDim, p.blockSize, p.maxBlocks());
  });
  std::vector<float> actual(expected.size());
  for (size_t i = 0; i < p.elements(); i++) {
    actual[i] = f16_to_f32(kPool[i]);
    actual[p.elements() + i] = f16_to_f32(vPool[i]);
  }
  report("kv_append rows=19 over tables with holes (whole pool)", actual, expected, magnitudes(expected), 0, 0);
}

static void checkAttention(const Paged& p, int numHeads, const std::vector<int>& rowSeq, const std::vector<int>& rowPos) {
  int rows = (int) rowSeq.size(), kvWidth = p.numKvHeads * p.headDim, headDim = p.headDim;
  std::vector<u16> kPool(p.elements()), vPool(p.elements());
  std::vector<float> kv = normal(2 * p.elements(), 1);
  for (size_t i = 0; i < p.elements(); i++) {
    kPool[i] = toF16(kv[i]);
    vPool[i] = toF16(kv[p.elements() + i]);
  }
  std::vector<float> q = normal((size_t) rows * numHeads * headDim, 1), out(q.size(), NAN);
  std::vector<double> expected(q.size());
  double scale = 1 / std::sqrt((double) headDim);
  int group = numHeads / p.numKvHeads;
  for (int t = 0; t < rows; t++)
    for (int h = 0; h < numHeads; h++) {
      int g = h / group;
      std::vector<double> s(rowPos[t] + 1);
      double mx = -INFINITY, sum = 0;
      for (int j = 0; j <= rowPos[t]; j++) {
        double dot = 0;
        for (int d = 0; d < headDim; d++)
          dot += q[((size_t) t * numHeads + h) * headDim + d] * (double) f16_to_f32(kPool[p.base(rowSeq[t], j) + g * headDim + d]);
        s[j] = scale * dot;
        mx = std::max(mx, s[j]);
      }
      for (auto& x : s) sum += (x = std::exp(x - mx));
      for (int d = 0; d < headDim; d++) {
        double o = 0;
        for (int j = 0; j <= rowPos[t]; j++) o += s[j] / sum * f16_to_f32(vPool[p.base(rowSeq[t], j) + g * headDim + d]);
        expected[((size_t) t * numHeads + h) * headDim + d] = o;
      }
    }
  std::vector<int> tables = p.flat();
  launch(numHeads, rows, 256, [&] {
    paged_attention(ptr(out.data()), ptr(q.data()), ptr(kPool.data()), ptr(vPool.data()), ptr(tables.data()),
        ptr(rowSeq.data()), ptr(rowPos.data()), numHeads, p.numKvHeads, headDim, p.blockSize, p.maxBlocks(),
        (float) scale);
  });
  (void) kvWidth;
  report("paged_attention rows=" + std::to_string(rows) + " heads=" + std::to_string(numHeads) + " kvHeads="
      + std::to_string(p.numKvHeads) + " headDim=" + std::to_string(headDim), out, expected, magnitudes(expected),
      2e-5, 1e-4);
}

// out = (x - mean) / sqrt(var + eps) * w + b per row, the variance about the mean (two passes).
static void checkLayerNorm(int hidden, int rows, float offset) {
  std::vector<float> x = normal((size_t) rows * hidden, 2), w = normal(hidden, 0.2), b = normal(hidden, 0.1),
      out(x.size());
  for (auto& v : x) v += offset;
  for (auto& v : w) v += 1;
  std::vector<double> expected(x.size()), scale(x.size());
  for (int t = 0; t < rows; t++) {
    const float* r = x.data() + (size_t) t * hidden;
    double mean = 0, meanAbs = 0, var = 0;
    for (int i = 0; i < hidden; i++) mean += r[i], meanAbs += std::fabs(r[i]);
    mean /= hidden;
    meanAbs /= hidden;
    for (int i = 0; i < hidden; i++) var += (r[i] - mean) * (r[i] - mean);
    double s = 1 / std::sqrt(var / hidden + 1e-5);
    for (int i = 0; i < hidden; i++) {
      expected[(size_t) t * hidden + i] = (r[i] - mean) * s * w[i] + b[i];
      scale[(size_t) t * hidden + i] = s * std::fabs(w[i]) * (std::fabs(r[i] - mean) + meanAbs) + std::fabs(b[i]);
    }
  }
  launch(rows, 1, 256, [&] { layer_norm(ptr(out.data()), ptr(x.data()), ptr(w.data()), ptr(b.data()), hidden, 1e-5f); });
  report("layer_norm rows=" + std::to_string(rows) + " hidden=" + std::to_string(hidden) + " offset="
      + std::to_string((int) offset), out, expected, scale, 0, 2.0 * hidden * 0x1p-24 + 4 * 0x1p-24);
}

static void checkAddTableAndQuickGelu() {
  int n = 3 * 17 * 64, tableSize = 17 * 64;
  std::vector<float> x = normal(n, 1), table = normal(tableSize, 1), out(n), g = normal(1001, 3), g0 = g;
  std::vector<double> e1(n), e2(g.size());
  for (int i = 0; i < n; i++) e1[i] = (float) (x[i] + table[i % tableSize]);
  for (size_t i = 0; i < g.size(); i++) e2[i] = g0[i] / (1 + std::exp(-1.702 * g0[i]));
  launch(2, 1, 256, [&] { add_table(ptr(out.data()), ptr(x.data()), ptr(table.data()), n, tableSize); });
  report("add_table n=3264 tableSize=1088 (2 blocks: grid-stride)", out, e1, magnitudes(e1), 0, 0);
  launch(2, 1, 256, [&] { quick_gelu(ptr(g.data()), (int) g.size()); });
  report("quick_gelu n=1001 (2 blocks: grid-stride)", g, e2, magnitudes(e2), 1e-7, 1e-5);
}

// Each image's queries over all its keys, q/k/v read through (offset, image, row, head) strides.
static void checkFullAttention(bool fused, int images, int queries, int keys, int heads, int headDim,
    bool tensorCores = false) {
  int width = heads * headDim;
  std::vector<float> qData, kData, vData;
  int qOff = 0, kOff = 0, vOff = 0, qImg, qRow, qHead, kvImg, kvRow, kvHead;
  if (fused) { // the ViT's rows: per head [q | k | v]
    qData = normal((size_t) images * keys * 3 * width, 1);
    kOff = headDim;
    vOff = 2 * headDim;
    qImg = kvImg = keys * 3 * width;
    qRow = kvRow = 3 * width;
    qHead = kvHead = 3 * headDim;
  } else {
    qData = normal((size_t) images * queries * width, 1);
    kData = normal((size_t) images * keys * width, 1);
    vData = normal((size_t) images * keys * width, 1);
    qImg = queries * width;
    kvImg = keys * width;
    qRow = kvRow = width;
    qHead = kvHead = headDim;
  }
  // the tensor-core kernel reads q, k and v rounded to F16: the reference takes the same values
  std::vector<float> qIn = qData, kIn = kData, vIn = vData;
  auto round16 = [](std::vector<float>& a) { for (auto& x : a) x = (float) (_Float16) x; };
  if (tensorCores) {
    round16(qIn);
    round16(kIn);
    round16(vIn);
  }
  const float* q = qData.data() + qOff;
  const float* k = (fused ? qData.data() : kData.data()) + kOff;
  const float* v = (fused ? qData.data() : vData.data()) + vOff;
  const float* qr = qIn.data() + qOff;
  const float* kr = (fused ? qIn.data() : kIn.data()) + kOff;
  const float* vr = (fused ? qIn.data() : vIn.data()) + vOff;
  double scale = 1 / std::sqrt((double) headDim);
  std::vector<float> out((size_t) images * queries * width);
  std::vector<double> expected(out.size()), spread(out.size());
  for (int img = 0; img < images; img++)
    for (int i = 0; i < queries; i++)
      for (int h = 0; h < heads; h++) {
        std::vector<double> s(keys);
        double max = -INFINITY, sum = 0;
        for (int j = 0; j < keys; j++) {
          double dot = 0;
          for (int d = 0; d < headDim; d++)
            dot += (double) qr[img * qImg + i * qRow + h * qHead + d] * kr[img * kvImg + j * kvRow + h * kvHead + d];
          s[j] = scale * dot;
          max = std::max(max, s[j]);
        }
        for (int j = 0; j < keys; j++) sum += (s[j] = std::exp(s[j] - max));
        for (int d = 0; d < headDim; d++) {
          double o = 0;
          double lo = INFINITY, hi = -INFINITY;
          for (int j = 0; j < keys; j++) {
            double value = vr[img * kvImg + j * kvRow + h * kvHead + d];
            o += s[j] / sum * value;
            lo = std::min(lo, value);
            hi = std::max(hi, value);
          }
          expected[((size_t) img * queries + i) * width + h * headDim + d] = o;
          spread[((size_t) img * queries + i) * width + h * headDim + d] = hi - lo;
        }
      }
  if (tensorCores) {
    launch(heads, images * ceilDiv(queries, 64), 128, [&] {
      full_attention_f16(ptr(out.data()), ptr(q), ptr(k), ptr(v), queries, keys, headDim, qImg, qRow, qHead, kvImg,
          kvRow, kvHead, (float) scale);
    });
    // P rounded to F16: 2^-11 of each weight, so about 2^-11 of the values' spread (twice, with margin)
    report(std::string("full_attention_f16") + (fused ? " fused-qkv" : "") + " images=" + std::to_string(images)
        + " queries=" + std::to_string(queries) + " keys=" + std::to_string(keys) + " heads=" + std::to_string(heads)
        + " headDim=" + std::to_string(headDim), out, expected, spread, 2e-5, 0x1p-9);
    return;
  }
  launch(heads, images * ceilDiv(queries, 8), 256, [&] {
    full_attention(ptr(out.data()), ptr(q), ptr(k), ptr(v), queries, keys, headDim, qImg, qRow, qHead, kvImg, kvRow,
        kvHead, (float) scale);
  });
  report(std::string("full_attention") + (fused ? " fused-qkv" : "") + " images=" + std::to_string(images) + " queries="
      + std::to_string(queries) + " keys=" + std::to_string(keys) + " heads=" + std::to_string(heads) + " headDim="
      + std::to_string(headDim), out, expected, magnitudes(expected), 2e-5, 1e-4);
}

int main() {
  for (int kind = 0; kind < 3; kind++) checkEmbedding(kind);
  checkRmsNorm(777, 2, {0, 0, 1, 1, 0});
  checkRmsNorm(288, 1, {1});
  checkAddRmsNorm();
  checkRope();
  checkSiluAndResidual();
  for (int kind = 0; kind < 3; kind++) {
    checkMatmul(kind, 0, 33, 777, 2);
    checkMatmul(kind, 0, 33, 1024, 3);
  }
  checkMatmul(0, 0, 33, 1024, 2, 1, true);
  checkMatmul(2, 0, 33, 1024, 2, 1, true);
  checkMatmul(0, 0, 33, 1024, 9, 8, true);
  checkMatmul(0, 128, 70, 1024, 9, 1, true);
  checkMatmul(0, 64, 70, 1024, 9, 1, true);
  for (int kind = 0; kind < 2; kind++) {
    checkMatmul(kind, 0, 33, 777, 3, 8);
    checkMatmul(kind, 0, 33, 1024, 17, 8);
    // gemm: partial tiles, odd cols (element-by-element chunks), fewer K tiles than stages, and
    // 32 K tiles (the stage ring wraps many times) over 3 x 2 blocks
    for (int tile : {128, 64}) {
      checkMatmul(kind, tile, 70, 777, 17);
      checkMatmul(kind, tile, 130, 96, 70);
      checkMatmul(kind, tile, 300, 1024, 200);
      // K splits: 4 of 256 columns; 3 over 777 columns (288, 288 and a partial 201, the last chunk
      // element by element); 5 over 96 columns (32 each: 3 splits hold columns)
      checkMatmul(kind, tile, 130, 1024, 17, 1, false, 4);
      checkMatmul(kind, tile, 70, 777, 9, 1, false, 3);
      checkMatmul(kind, tile, 70, 96, 70, 1, false, 5);
    }
  }
  checkKvAppend();
  {
    std::vector<int> seq = {0, 1}, pos = {40, 0};
    for (int i = 0; i < 17; i++) {
      seq.push_back(2);
      pos.push_back(23 + i);
    }
    checkAttention(Paged{12, 16, 2, 40, {{3, 8, 1}, {10}, {11, 6, 0}}}, 6, seq, pos);
  }
  checkAttention(Paged{12, 16, 2, 128, {{9, 4, 7}, {1, 0}}}, 4, {0, 1, 1}, {37, 19, 20});
  // the edges of the shapes: headDim 256 (every lane pair group full) with one kv head for 3 query
  // heads (multi-query), headDim 2 (one lane busy), and blocks of 7 and of 1 position
  checkAttention(Paged{6, 16, 1, 256, {{5, 1}, {3}}}, 3, {0, 1}, {20, 9});
  checkAttention(Paged{9, 7, 2, 2, {{8, 0, 4, 2}, {7, 1}}}, 4, {0, 0, 0, 1}, {25, 26, 27, 13});
  checkAttention(Paged{40, 1, 2, 64, {{39, 0, 38, 1, 37, 2, 36, 3, 35, 4, 34, 5, 33, 6, 32, 7, 31}}}, 2, {0}, {16});
  checkLayerNorm(777, 5, 0);
  checkLayerNorm(64, 3, 30);
  checkAddTableAndQuickGelu();
  checkFullAttention(true, 2, 37, 37, 3, 40);
  checkFullAttention(false, 2, 5, 70, 2, 128);
  checkFullAttention(false, 1, 9, 33, 2, 2);
  // tensor cores: 70 query rows (a full and a partial block of 64), 37 and 70 keys (partial tiles of 32)
  checkFullAttention(true, 2, 70, 70, 2, 64, true);
  checkFullAttention(false, 2, 5, 37, 3, 16, true);
  checkFullAttention(true, 1, 17, 17, 4, 16, true);
  std::printf(failures ? "%d cases failed\n" : "all cases passed\n", failures);
  return failures ? 1 : 0;
}
