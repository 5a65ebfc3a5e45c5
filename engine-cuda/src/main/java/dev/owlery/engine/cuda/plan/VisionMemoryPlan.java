package dev.owlery.engine.cuda.plan;

import dev.owlery.engine.cuda.device.CudaDevice;

/**
 * How a vision worker uses a CUDA device: like a shard ({@link DeviceMemoryPlan}), it may use
 * {@code --gpu-memory-utilization} of the device's total memory, so that shards and vision workers
 * sharing a GPU each keep to their own fraction; the tower's weights and the workspace of a pass of
 * {@code --max-batch-images} images must fit in it.
 *
 * @param device the device as probed
 * @param gpuMemoryUtilization the fraction of {@code device}'s total memory this process may use
 * @param budgetBytes {@code floor(gpuMemoryUtilization x total)}
 * @param footprint the tower's weights and workspace per image
 * @param maxBatchImages images per pass
 */
public record VisionMemoryPlan(CudaDevice device, double gpuMemoryUtilization, long budgetBytes,
    VisionFootprint footprint, int maxBatchImages) {

  /**
   * Plans the tower on {@code device}.
   *
   * @throws IllegalArgumentException when the utilization is not in (0, 1], asks for more than is
   *     free, or the weights and a pass of {@code maxBatchImages} do not fit in it (saying how many
   *     images would)
   */
  public static VisionMemoryPlan of(CudaDevice device, double gpuMemoryUtilization, VisionFootprint footprint,
      int maxBatchImages) {
    if (maxBatchImages < 1) {
      throw new IllegalArgumentException("--max-batch-images must be >= 1. Given: " + maxBatchImages);
    }
    long budget = DeviceMemoryPlan.budget(device, gpuMemoryUtilization);
    long needed = footprint.bytes(maxBatchImages);
    if (needed > budget) {
      long fitting = Math.max(0, (budget - footprint.weightBytes()) / footprint.workspaceBytesPerImage());
      throw new IllegalArgumentException(("the vision tower needs %s for its weights and %s of workspace for a pass of "
          + "%d images: %s more than --gpu-memory-utilization %s gives it on cuda:%d (%s of %s); %s")
          .formatted(DeviceMemoryPlan.bytes(footprint.weightBytes()),
              DeviceMemoryPlan.bytes(needed - footprint.weightBytes()), maxBatchImages,
              DeviceMemoryPlan.bytes(needed - budget), DeviceMemoryPlan.fraction(gpuMemoryUtilization), device.index(),
              DeviceMemoryPlan.bytes(budget), DeviceMemoryPlan.bytes(device.totalBytes()),
              fitting == 0 ? "not even the weights and one image fit: raise it"
                  : "raise it, or lower --max-batch-images to " + fitting + " or fewer"));
    }
    return new VisionMemoryPlan(device, gpuMemoryUtilization, budget, footprint, maxBatchImages);
  }
}
