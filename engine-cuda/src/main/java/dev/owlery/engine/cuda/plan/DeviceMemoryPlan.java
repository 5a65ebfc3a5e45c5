package dev.owlery.engine.cuda.plan;

import dev.owlery.engine.cuda.device.CudaDevice;
import java.util.Locale;

/**
 * How a slice uses a CUDA device: vLLM's {@code --gpu-memory-utilization} is the fraction of the
 * device's total memory this process may allocate (several shard processes on one GPU each take
 * their own fraction), and the KV pool gets what the weights and the workspace leave of it:
 *
 * <pre>
 *   budget      = floor(utilization x total)            (must not exceed what is free)
 *   numKvBlocks = floor((budget - weights - workspace) / (blockSize x kvBytesPerPosition))
 * </pre>
 *
 * The CUDA context's own memory is outside the budget: it is already taken out of the free memory
 * the device reports to a process holding a context.
 *
 * @param device the device as probed
 * @param gpuMemoryUtilization the fraction of {@code device}'s total memory this process may use
 * @param budgetBytes {@code floor(gpuMemoryUtilization x total)}
 * @param slice the slice's weights, workspace and KV bytes per position
 * @param blockSize positions per KV block (the coordinator's {@code --block-size})
 * @param numKvBlocks KV blocks of {@code blockSize} positions that fit in the rest of the budget
 */
public record DeviceMemoryPlan(CudaDevice device, double gpuMemoryUtilization, long budgetBytes, SliceFootprint slice,
    int blockSize, int numKvBlocks) {

  /**
   * Plans {@code slice} on {@code device}.
   *
   * @throws IllegalArgumentException when the utilization is not in (0, 1], asks for more than is
   *     free, or leaves too little for the weights, the workspace and one KV block (saying how much
   *     is missing)
   */
  public static DeviceMemoryPlan of(CudaDevice device, double gpuMemoryUtilization, SliceFootprint slice,
      int blockSize) {
    if (blockSize < 1) {
      throw new IllegalArgumentException("the KV block size must be >= 1. Given: " + blockSize);
    }
    long budget = budget(device, gpuMemoryUtilization);
    long blockBytes = blockSize * slice.kvBytesPerPosition();
    long needed = slice.weightBytes() + slice.workspaceBytes() + blockBytes;
    if (needed > budget) {
      throw new IllegalArgumentException(("the slice needs %s for its %s weights, %s of workspace for %d batched tokens "
          + "and %s for one KV block of %d positions: %s more than --gpu-memory-utilization %s gives it on cuda:%d "
          + "(%s of %s); raise it, use more shards, or lower --max-num-batched-tokens")
          .formatted(bytes(slice.weightBytes()), slice.weightDtype(), bytes(slice.workspaceBytes()),
              slice.maxNumBatchedTokens(), bytes(blockBytes), blockSize, bytes(needed - budget),
              fraction(gpuMemoryUtilization), device.index(), bytes(budget), bytes(device.totalBytes())));
    }
    long blocks = (budget - slice.weightBytes() - slice.workspaceBytes()) / blockBytes;
    return new DeviceMemoryPlan(device, gpuMemoryUtilization, budget, slice, blockSize,
        (int) Math.min(Integer.MAX_VALUE, blocks));
  }

  /**
   * {@code floor(gpuMemoryUtilization x total)}: what one process may use of {@code device}.
   *
   * @throws IllegalArgumentException when the utilization is not in (0, 1] or asks for more than is free
   */
  static long budget(CudaDevice device, double gpuMemoryUtilization) {
    checkUtilization(gpuMemoryUtilization);
    long budget = (long) Math.floor(gpuMemoryUtilization * device.totalBytes());
    if (budget > device.freeBytes()) {
      throw new IllegalArgumentException(("--gpu-memory-utilization %s asks for %s of cuda:%d's %s, but only %s is "
          + "free (other processes hold the rest); lower it, or give each process on this GPU a fraction so that "
          + "together they stay below what is free")
          .formatted(fraction(gpuMemoryUtilization), bytes(budget), device.index(), bytes(device.totalBytes()),
              bytes(device.freeBytes())));
    }
    return budget;
  }

  /**
   * Checks a {@code --gpu-memory-utilization}: a fraction of the device's memory, above 0 and at most 1.
   *
   * @throws IllegalArgumentException otherwise
   */
  public static void checkUtilization(double gpuMemoryUtilization) {
    if (!(gpuMemoryUtilization > 0 && gpuMemoryUtilization <= 1)) {
      throw new IllegalArgumentException(
          "--gpu-memory-utilization must be > 0 and <= 1 (a fraction of the device's total memory). Given: "
              + gpuMemoryUtilization);
    }
  }

  /** Bytes of the KV pool. */
  public long kvCacheBytes() {
    return (long) numKvBlocks * blockSize * slice.kvBytesPerPosition();
  }

  /** One line for a node's log: the device, then weights, workspace and KV pool out of the budget. */
  public String describe() {
    return "%s: %s of it for weights %s, workspace %s, KV cache %s (%d blocks of %d positions)".formatted(
        device.describe(), bytes(budgetBytes), bytes(slice.weightBytes()), bytes(slice.workspaceBytes()),
        bytes(kvCacheBytes()), numKvBlocks, blockSize);
  }

  /** Bytes for people: GiB from 1 GiB on, else MiB, with two decimals. */
  static String bytes(long count) {
    return count >= 1L << 30
        ? String.format(Locale.ROOT, "%.2f GiB", count / (double) (1L << 30))
        : String.format(Locale.ROOT, "%.2f MiB", count / (double) (1L << 20));
  }

  static String fraction(double value) {
    return String.format(Locale.ROOT, "%s", value);
  }
}
