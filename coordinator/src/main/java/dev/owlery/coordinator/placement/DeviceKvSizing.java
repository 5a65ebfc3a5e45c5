package dev.owlery.coordinator.placement;

import dev.owlery.cluster.registry.NodeDevice;
import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.checkpoint.Checkpoints;
import dev.owlery.engine.config.LlamaConfig;
import dev.owlery.engine.cuda.device.CudaDevice;
import dev.owlery.engine.cuda.plan.DeviceMemoryPlan;
import dev.owlery.engine.cuda.plan.SliceFootprint;
import dev.owlery.engine.decoder.TensorParallelRank;
import dev.owlery.engine.kv.KvCacheDtype;
import dev.owlery.engine.tensor.DType;
import dev.owlery.engine.tensor.WeightFormat;
import java.nio.file.Path;

/**
 * How many KV blocks a shard serving from a device can hold as rank r of a group: the device's
 * memory plan ({@link DeviceMemoryPlan}) for that rank's slice, with the device, share and weight
 * form the shard registered ({@link NodeDevice}). The shard checks LoadSlice's num_kv_blocks with
 * the same plan over the same figures, so what is sized here is what it accepts. The checkpoint is
 * opened (its headers only) the first time a device shard is sized, for the dtype weights served
 * "as stored" take; a cluster of CPU shards never opens it here.
 */
final class DeviceKvSizing {

  private final LlamaConfig text;
  private final Path checkpointDir;
  private final int maxNumTokens;
  private final int blockSize;
  private DType storedDtype; // the checkpoint's q_proj dtype, read at first use; placement thread only

  /**
   * @param checkpointDir the model folder the shards load, as this coordinator sees it
   * @param maxNumTokens LoadSlice's max_num_tokens: the step workspace
   */
  DeviceKvSizing(LlamaConfig text, Path checkpointDir, int maxNumTokens, int blockSize) {
    this.text = text;
    this.checkpointDir = checkpointDir;
    this.maxNumTokens = maxNumTokens;
    this.blockSize = blockSize;
  }

  /**
   * The plan of {@code device}'s shard as rank {@code rank} of {@code worldSize}.
   *
   * @throws IllegalArgumentException when the slice and one block do not fit the shard's share of
   *     the device, or its weight form is not one a device serves (the plan's sentence)
   */
  DeviceMemoryPlan plan(NodeDevice device, int rank, int worldSize) {
    DType weights = SliceFootprint.deviceDtype(WeightFormat.parse(device.weights()), storedDtype());
    SliceFootprint footprint = SliceFootprint.of(text, new TensorParallelRank(rank, worldSize), weights,
        KvCacheDtype.F16, maxNumTokens);
    CudaDevice memory = new CudaDevice(device.index(), device.name(), device.computeCapability(), device.totalBytes(),
        device.freeBytes());
    return DeviceMemoryPlan.of(memory, device.gpuMemoryUtilization(), footprint, blockSize);
  }

  private DType storedDtype() {
    if (storedDtype == null) {
      try (Checkpoint checkpoint = Checkpoints.open(checkpointDir)) {
        storedDtype = checkpoint.tensor("model.layers.0.self_attn.q_proj.weight").dtype();
      }
    }
    return storedDtype;
  }
}
