package dev.owlery.engine.cuda.plan;

import dev.owlery.engine.config.LlamaConfig;
import dev.owlery.engine.cuda.device.CudaDevice;
import dev.owlery.engine.cuda.device.CudaDevices;
import dev.owlery.engine.cuda.device.DeviceProbe;
import dev.owlery.engine.decoder.TensorParallelRank;
import dev.owlery.engine.kv.KvCacheDtype;
import dev.owlery.engine.tensor.DType;
import java.io.PrintStream;

/**
 * {@code DevicePlanReport [N]}: the GPU check's first step. Probes CUDA device N (default 0) and
 * prints one line: the device and, on it, the memory plan of LLaMA-2-7B in F16 at 0.9 (one shard
 * process), and at 0.45 per rank of two shard processes sharing it, 512 batched tokens, blocks of
 * 16; or the probe's reason. Exits 0 with a device, 3 without.
 */
public final class DevicePlanReport {

  /** The exit status where there is no device. */
  public static final int NO_DEVICE = 3;

  /** LLaMA-2-7B's decoder (meta-llama/Llama-2-7b-hf config.json). */
  static final LlamaConfig LLAMA2_7B =
      new LlamaConfig(32000, 4096, 11008, 32, 32, 32, 128, 4096, 1e-5f, 10000f, false, 1, 2, false);

  private DevicePlanReport() {}

  public static void main(String[] args) {
    System.exit(run(args.length == 0 ? 0 : Integer.parseInt(args[0]), System.out));
  }

  /** Prints the report for {@code cuda:index} to {@code out}; returns the exit status. */
  static int run(int index, PrintStream out) {
    return switch (CudaDevices.probe(index)) {
      case DeviceProbe.Unavailable(String reason) -> {
        out.println(reason);
        yield NO_DEVICE;
      }
      case DeviceProbe.Found(CudaDevice device) -> {
        out.println(device.describe());
        out.println("LLaMA-2-7B F16, TP 1 at 0.9: " + plan(device, 0.9, new TensorParallelRank(0, 1)));
        out.println("LLaMA-2-7B F16, TP 2 at 0.45 per rank, rank 0: " + plan(device, 0.45, new TensorParallelRank(0, 2)));
        yield 0;
      }
    };
  }

  /** The plan's line, or why the slice does not fit (a smaller GPU than the check's). */
  private static String plan(CudaDevice device, double utilization, TensorParallelRank rank) {
    try {
      return DeviceMemoryPlan.of(device, utilization,
          SliceFootprint.of(LLAMA2_7B, rank, DType.F16, KvCacheDtype.F16, 512), 16).describe();
    } catch (IllegalArgumentException doesNotFit) {
      return doesNotFit.getMessage();
    }
  }
}
