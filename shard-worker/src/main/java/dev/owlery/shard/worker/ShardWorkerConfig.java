package dev.owlery.shard.worker;

import dev.owlery.engine.cuda.plan.SliceFootprint;
import dev.owlery.engine.tensor.DType;
import dev.owlery.engine.tensor.WeightFormat;
import dev.owlery.shard.collective.CollectiveConfig;
import java.nio.file.Path;
import java.util.List;

/**
 * What a shard worker allows and how it waits.
 *
 * @param allowedModelDirs LoadSlice may only open model folders at or under one of these; empty
 *     allows any folder
 * @param collective all-reduce and peer-connection timeouts, peer channel settings
 * @param maxQueuedCalls most calls waiting for the step thread; more are refused (RESOURCE_EXHAUSTED)
 * @param weights the form this worker holds its slice's weight matrices in ({@code --weights})
 * @param device where its slices run ({@code --device}): the CPU, or a CUDA device or its CPU twin
 */
public record ShardWorkerConfig(List<Path> allowedModelDirs, CollectiveConfig collective, int maxQueuedCalls,
    WeightFormat weights, ShardDevice device) {

  public ShardWorkerConfig {
    allowedModelDirs = allowedModelDirs.stream().map(dir -> dir.toAbsolutePath().normalize()).toList();
    if (collective == null) {
      throw new IllegalArgumentException("collective config must be set");
    }
    if (weights == null) {
      throw new IllegalArgumentException("weights must be set (WeightFormat.MAPPED reads them in place)");
    }
    if (device == null) {
      throw new IllegalArgumentException("device must be set (ShardDevice.CPU for the CPU)");
    }
    if (!device.isCpu()) {
      // refused here, at start, rather than at the first LoadSlice
      SliceFootprint.deviceDtype(weights, DType.F32);
    }
    if (maxQueuedCalls < 1) {
      throw new IllegalArgumentException("maxQueuedCalls must be >= 1. Given: " + maxQueuedCalls);
    }
  }

  /** Any model folder, the collective's defaults (5 s all-reduce wait), 64 queued calls, weights as stored, the CPU. */
  public static ShardWorkerConfig defaults() {
    return new ShardWorkerConfig(List.of(), CollectiveConfig.defaults(), 64, WeightFormat.STORED, ShardDevice.CPU);
  }

  public ShardWorkerConfig withAllowedModelDirs(List<Path> dirs) {
    return new ShardWorkerConfig(dirs, collective, maxQueuedCalls, weights, device);
  }

  public ShardWorkerConfig withCollective(CollectiveConfig newCollective) {
    return new ShardWorkerConfig(allowedModelDirs, newCollective, maxQueuedCalls, weights, device);
  }

  public ShardWorkerConfig withWeights(WeightFormat format) {
    return new ShardWorkerConfig(allowedModelDirs, collective, maxQueuedCalls, format, device);
  }

  public ShardWorkerConfig withDevice(ShardDevice newDevice) {
    return new ShardWorkerConfig(allowedModelDirs, collective, maxQueuedCalls, weights, newDevice);
  }

  /** Whether LoadSlice may open {@code modelDir}. */
  public boolean allows(Path modelDir) {
    Path dir = modelDir.toAbsolutePath().normalize();
    return allowedModelDirs.isEmpty() || allowedModelDirs.stream().anyMatch(dir::startsWith);
  }
}
