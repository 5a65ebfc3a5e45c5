package dev.owlery.visionworker;

import dev.owlery.engine.cuda.device.DeviceSpec;
import dev.owlery.engine.cuda.plan.DeviceMemoryPlan;
import dev.owlery.engine.tensor.WeightFormat;
import dev.owlery.cluster.membership.MembershipConfig;
import dev.owlery.cluster.rpc.GrpcServerConfig;
import java.nio.file.Path;

/**
 * How a vision worker starts.
 *
 * @param nodeId unique in the cluster, e.g. "vision-0"
 * @param modelDir the mPLUG-Owl2 checkpoint folder (config.json, weights, preprocessor_config.json)
 * @param membership how the node joins the Hazelcast cluster
 * @param grpc where the gRPC server listens (port 0 picks one)
 * @param advertisedHost the host other nodes reach this one at (published in the registry)
 * @param metricsPort port of the Prometheus endpoint on the gRPC host, 0 picks one
 * @param maxBatchSize most images one EncodeImages call may carry, >= 1
 * @param maxImageBytes largest encoded image accepted, >= 1
 * @param numEncodeThreads images encoded at once (each encode also splits its matmuls over the
 *     kernel threads), >= 1
 * @param maxQueuedBatches calls waiting for an encode thread before RESOURCE_EXHAUSTED, >= 0
 * @param weights the form the tower's linear layers hold their weights in ({@code --weights})
 * @param device where the tower runs ({@code --device}): the host, or a CUDA device
 * @param hostKernels on the host, the kernels the tower's matmuls run on ({@code --kernels}); only
 *     {@link HostKernels#VECTOR} with a CUDA device
 * @param maxBatchImages on a device, images per pass at most, from one call or several ({@code
 *     --max-batch-images}), >= 1; on the host each image is its own pass and this only bounds the flag
 * @param gpuMemoryUtilization on a device, the fraction of its total memory this worker may use
 *     ({@code --gpu-memory-utilization}, as a shard's): the tower's weights and a pass's workspace
 *     must fit in it
 */
public record VisionWorkerConfig(
    String nodeId,
    Path modelDir,
    MembershipConfig membership,
    GrpcServerConfig grpc,
    String advertisedHost,
    int metricsPort,
    int maxBatchSize,
    int maxImageBytes,
    int numEncodeThreads,
    int maxQueuedBatches,
    WeightFormat weights,
    DeviceSpec device,
    HostKernels hostKernels,
    int maxBatchImages,
    double gpuMemoryUtilization) {

  /** Default {@link #maxBatchSize}, as vision_worker.proto documents it. */
  public static final int DEFAULT_MAX_BATCH_SIZE = 8;
  /** Default {@link #maxBatchImages}. */
  public static final int DEFAULT_MAX_BATCH_IMAGES = 8;
  /** Default {@link #gpuMemoryUtilization}, vLLM's. */
  public static final double DEFAULT_GPU_MEMORY_UTILIZATION = 0.9;
  /** Default {@link #maxImageBytes}: 20 MiB, as owlery.proto documents it. */
  public static final int DEFAULT_MAX_IMAGE_BYTES = 20 << 20;

  public VisionWorkerConfig {
    if (nodeId == null || nodeId.isBlank()) {
      throw new IllegalArgumentException("nodeId must not be blank. Given: '" + nodeId + "'");
    }
    if (modelDir == null || membership == null || grpc == null) {
      throw new IllegalArgumentException("modelDir, membership and grpc must be set. Given: " + modelDir + ", "
          + membership + ", " + grpc);
    }
    if (device == null) {
      throw new IllegalArgumentException("device must be set (DeviceSpec.CPU for the host)");
    }
    if (hostKernels == null) {
      throw new IllegalArgumentException("hostKernels must be set (HostKernels.VECTOR by default)");
    }
    if (hostKernels != HostKernels.VECTOR && !(device instanceof DeviceSpec.Cpu)) {
      throw new IllegalArgumentException("--kernels %s runs the tower on the host; it cannot go with --device %s"
          .formatted(hostKernels.flagName(), device.flagValue()));
    }
    if (weights == null) {
      throw new IllegalArgumentException("weights must be set (WeightFormat.MAPPED reads them in place)");
    }
    if (advertisedHost == null || advertisedHost.isBlank()) {
      throw new IllegalArgumentException("advertisedHost must not be blank. Given: '" + advertisedHost + "'");
    }
    requireAtLeast("metricsPort", metricsPort, 0);
    if (metricsPort > 65535) {
      throw new IllegalArgumentException("metricsPort must be in 0..65535. Given: " + metricsPort);
    }
    requireAtLeast("maxBatchSize", maxBatchSize, 1);
    requireAtLeast("maxImageBytes", maxImageBytes, 1);
    requireAtLeast("numEncodeThreads", numEncodeThreads, 1);
    requireAtLeast("maxQueuedBatches", maxQueuedBatches, 0);
    requireAtLeast("maxBatchImages", maxBatchImages, 1);
    DeviceMemoryPlan.checkUtilization(gpuMemoryUtilization);
  }

  /** This config on the host's {@code kernels} instead. */
  public VisionWorkerConfig withHostKernels(HostKernels kernels) {
    return new VisionWorkerConfig(nodeId, modelDir, membership, grpc, advertisedHost, metricsPort, maxBatchSize,
        maxImageBytes, numEncodeThreads, maxQueuedBatches, weights, device, kernels, maxBatchImages,
        gpuMemoryUtilization);
  }

  /**
   * Images a device worker lets wait for a pass: as many as the calls it would queue for its encode
   * threads could carry, and at least one pass.
   */
  public int maxQueuedImages() {
    return Math.max(maxBatchImages, Math.multiplyExact(maxQueuedBatches + numEncodeThreads, maxBatchSize));
  }

  /**
   * A worker with the defaults: metrics on a free port, batches of at most 8 images of at most
   * 20 MiB, one encode at a time with up to 16 calls waiting, weights as stored, on the host's
   * vector kernels (on a device: passes of 8 images within 0.9 of its memory).
   */
  public static VisionWorkerConfig of(
      String nodeId, Path modelDir, MembershipConfig membership, GrpcServerConfig grpc, String advertisedHost) {
    return new VisionWorkerConfig(
        nodeId, modelDir, membership, grpc, advertisedHost, 0, DEFAULT_MAX_BATCH_SIZE, DEFAULT_MAX_IMAGE_BYTES, 1, 16,
        WeightFormat.STORED, DeviceSpec.CPU, HostKernels.VECTOR, DEFAULT_MAX_BATCH_IMAGES, DEFAULT_GPU_MEMORY_UTILIZATION);
  }

  private static void requireAtLeast(String name, int value, int minimum) {
    if (value < minimum) {
      throw new IllegalArgumentException(name + " must be >= " + minimum + ". Given: " + value);
    }
  }
}
