package dev.owlery.engine.cuda.check;

import dev.owlery.engine.cuda.forward.SplitGemm;
import dev.owlery.engine.cuda.ptx.PtxKernel;
import dev.owlery.engine.cuda.ptx.PtxKernels;
import dev.owlery.engine.cuda.runtime.CudaDriverDevice;
import dev.owlery.engine.cuda.runtime.DeviceGraph;
import dev.owlery.engine.cuda.runtime.DevicePointer;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Times the kernels that decide decode and prefill speed at LLaMA-2-7B's shapes (F16 weights,
 * hidden 4096, FFN 11008, vocabulary 32000, 32 heads of 128), next to a device-to-device copy
 * measured in the same run: the matrix products' weight bytes per second as a fraction of the copy's
 * bandwidth (read + write), the GEMM's TFLOP/s. Reported, never asserted: speeds are for the GPU run
 * to read. Each kernel is timed as a CUDA graph of {@value #REPEATS} launches replayed, the way a
 * decode step runs: back-to-back launches from Java measured the host's launch rate instead (about
 * 20 us a launch through JCuda, more than a 4,096 x 4,096 GEMV takes on an H200).
 */
final class KernelTimings {

  private static final int REPEATS = 20;
  private static final short F16_ONE = 0x3c00; // weight values do not change a kernel's time

  /** One timed kernel: what it read (bytes) and computed (flops) per run. */
  record Timing(String kernel, String shape, double microseconds, double bytes, double flops) {

    double gigabytesPerSecond() {
      return bytes / microseconds / 1e3;
    }

    double teraflopsPerSecond() {
      return flops / microseconds / 1e6;
    }
  }

  private KernelTimings() {}

  /** The copy first, then each kernel; every buffer freed before returning. */
  static List<Timing> run(CudaDriverDevice gpu) {
    List<Timing> timings = new ArrayList<>();
    try {
      long copyBytes = 1L << 30;
      DevicePointer src = gpu.allocate(copyBytes);
      DevicePointer dst = gpu.allocate(copyBytes);
      double copyMs = gpu.millisecondsPerRun(REPEATS, () -> gpu.copy(dst, src, copyBytes));
      timings.add(new Timing("device-to-device copy", "1 GiB, read + write", copyMs * 1e3, 2.0 * copyBytes, 0));
      gpu.freeAll();
      timings.add(product(gpu, PtxKernels.GEMV_F16, 4096, 4096, 1));
      timings.add(product(gpu, PtxKernels.GEMV_F16, 11008, 4096, 1));
      timings.add(product(gpu, PtxKernels.GEMV_F16, 4096, 11008, 1));
      timings.add(product(gpu, PtxKernels.GEMV_F16, 32000, 4096, 1));
      // the kernel picks of DeviceMatrix: gemv8 against gemm64 for a few tokens, gemm64 against gemm
      for (int tokens : new int[] {4, 8, 16}) {
        timings.add(product(gpu, PtxKernels.GEMV8_F16, 11008, 4096, tokens));
        timings.add(product(gpu, PtxKernels.GEMM64_F16, 11008, 4096, tokens));
      }
      for (int tokens : new int[] {64, 128, 256, 512}) {
        timings.add(product(gpu, PtxKernels.GEMM64_F16, 11008, 4096, tokens));
        timings.add(product(gpu, PtxKernels.GEMM_F16, 11008, 4096, tokens));
      }
      timings.add(product(gpu, PtxKernels.GEMM64_F16, 4096, 4096, 512));
      timings.add(product(gpu, PtxKernels.GEMM_F16, 4096, 4096, 512));
      timings.add(product(gpu, PtxKernels.GEMM_F16, 4096, 1024, 1025 * 16)); // ViT-L/14 fc1 over 16 images
      // K splits (SplitGemm's choice) against one pass, where a decode batch has few tiles
      for (int[] shape : new int[][] {{4096, 4096, 16}, {4096, 4096, 64}, {4096, 11008, 64}, {11008, 4096, 64}}) {
        int splits = SplitGemm.splits(PtxKernels.GEMM64_F16, shape[0], shape[1], shape[2], SplitGemm.SCRATCH_FLOATS);
        timings.add(product(gpu, PtxKernels.GEMM64_F16, shape[0], shape[1], shape[2]));
        timings.add(product(gpu, PtxKernels.GEMM64_F16, shape[0], shape[1], shape[2], splits));
      }
      timings.add(attention(gpu, 1, 512));
      timings.add(attention(gpu, 16, 512));
    } finally {
      gpu.freeAll();
    }
    return timings;
  }

  /** out = W x at rows x cols with numTokens tokens. */
  private static Timing product(CudaDriverDevice gpu, PtxKernel kernel, int rows, int cols, int numTokens) {
    return product(gpu, kernel, rows, cols, numTokens, 1);
  }

  /** As above, a GEMM in {@code splits} K splits and their sum when more than 1, as SplitGemm launches them. */
  private static Timing product(CudaDriverDevice gpu, PtxKernel kernel, int rows, int cols, int numTokens,
      int splits) {
    DevicePointer w = gpu.filled16((long) rows * cols, F16_ONE);
    DevicePointer x = gpu.upload(new float[numTokens * cols]);
    DevicePointer out = gpu.allocate(4L * numTokens * rows);
    DevicePointer scratch = splits > 1 ? gpu.allocate(SplitGemm.SCRATCH_BYTES) : null;
    Runnable launch;
    if (kernel == PtxKernels.GEMV_F16) {
      launch = () -> gpu.launch(kernel, MatmulCase.ceilDiv(rows, 8), numTokens, out, w, x, rows, cols);
    } else if (kernel == PtxKernels.GEMV8_F16) {
      launch = () -> gpu.launch(kernel, MatmulCase.ceilDiv(rows, 8), MatmulCase.ceilDiv(numTokens, 8), out, w, x,
          rows, cols, numTokens);
    } else {
      launch = () -> SplitGemm.launch(gpu, kernel, out, w, x, rows, cols, numTokens, splits, scratch);
    }
    double ms = graphMilliseconds(gpu, launch);
    gpu.freeAll();
    String name = splits > 1 ? kernel.name() + "+split_sum" : kernel.name();
    return new Timing(name, "rows=%d cols=%d tokens=%d%s".formatted(rows, cols, numTokens,
        splits > 1 ? " splits=" + splits : ""), ms * 1e3, 2.0 * rows * cols, 2.0 * rows * cols * numTokens);
  }

  /** Milliseconds per run of {@code launches}, from a graph of {@value #REPEATS} runs replayed 3 times after 1. */
  private static double graphMilliseconds(CudaDriverDevice gpu, Runnable launches) {
    try (DeviceGraph graph = gpu.capture(() -> {
      for (int i = 0; i < REPEATS; i++) {
        launches.run();
      }
    })) {
      return gpu.millisecondsPerRun(3, graph::replay) / REPEATS;
    }
  }

  /** numSeqs decode rows of 32 heads of 128, each over numKeys positions in blocks of 16. */
  private static Timing attention(CudaDriverDevice gpu, int numSeqs, int numKeys) {
    int heads = 32;
    int headDim = 128;
    int blockSize = 16;
    int blocksPerSeq = numKeys / blockSize;
    long poolElements = (long) numSeqs * blocksPerSeq * blockSize * heads * headDim;
    int[] tables = new int[numSeqs * blocksPerSeq];
    for (int i = 0; i < tables.length; i++) {
      tables[i] = i;
    }
    int[] rowSeq = new int[numSeqs];
    int[] rowPos = new int[numSeqs];
    for (int s = 0; s < numSeqs; s++) {
      rowSeq[s] = s;
      rowPos[s] = numKeys - 1;
    }
    DevicePointer k = gpu.filled16(poolElements, F16_ONE);
    DevicePointer v = gpu.filled16(poolElements, F16_ONE);
    DevicePointer q = gpu.upload(new float[numSeqs * heads * headDim]);
    DevicePointer out = gpu.allocate(4L * numSeqs * heads * headDim);
    DevicePointer tablesOnDevice = gpu.upload(tables);
    DevicePointer seqs = gpu.upload(rowSeq);
    DevicePointer positions = gpu.upload(rowPos);
    double ms = graphMilliseconds(gpu, () -> gpu.launch(PtxKernels.PAGED_ATTENTION, heads, numSeqs, out,
        q, k, v, tablesOnDevice, seqs, positions, heads, heads, headDim, blockSize, blocksPerSeq,
        (float) (1 / Math.sqrt(headDim))));
    gpu.freeAll();
    return new Timing(PtxKernels.PAGED_ATTENTION.name(), "seqs=%d keys=%d heads=32 headDim=128".formatted(numSeqs,
        numKeys), ms * 1e3, 2.0 * 2 * poolElements, 4.0 * numSeqs * heads * numKeys * headDim);
  }

  /** One report line: time, bytes per second (and the share of the copy's), flops where they matter. */
  static String describe(Timing t, double copyGigabytesPerSecond) {
    String line = String.format(Locale.ROOT, "TIME %-22s %-36s %9.1f us %8.1f GB/s", t.kernel(), t.shape(),
        t.microseconds(), t.gigabytesPerSecond());
    if (t.flops() == 0) {
      return line;
    }
    return line + String.format(Locale.ROOT, " (%.0f%% of the copy) %7.1f TFLOP/s",
        100 * t.gigabytesPerSecond() / copyGigabytesPerSecond, t.teraflopsPerSecond());
  }
}
