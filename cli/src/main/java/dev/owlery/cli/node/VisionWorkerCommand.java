package dev.owlery.cli.node;

import dev.owlery.cli.DeviceOptions;
import dev.owlery.cli.WeightFormatConverter;
import dev.owlery.cluster.rpc.GrpcServerConfig;
import dev.owlery.cluster.tls.ReloadingTls;
import dev.owlery.engine.cuda.device.DeviceSpec;
import dev.owlery.engine.tensor.WeightFormat;
import dev.owlery.visionworker.HostKernels;
import dev.owlery.visionworker.VisionWorkerConfig;
import dev.owlery.visionworker.VisionWorkerNode;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** {@code owlery vision-worker}: a stateless node turning pictures into visual embeddings. */
@Command(name = "vision-worker", mixinStandardHelpOptions = true,
    description = "Run a vision worker (image bytes in, visual embeddings out) until interrupted.")
public final class VisionWorkerCommand implements Callable<Integer> {

  @Spec
  CommandSpec spec;

  @Mixin
  NodeOptions node;

  @Option(names = "--model", required = true, description = "The mPLUG-Owl2 model directory.")
  Path model;

  @Option(names = "--weights", defaultValue = "stored", converter = WeightFormatConverter.class,
      description = "The tower's weight matrices: mapped (read in place), stored (copied as stored into memory of its own), f16, bf16, q8_0 or q4_0 (converted once at load); default ${DEFAULT-VALUE}.")
  WeightFormat weights;

  @Option(names = "--device", defaultValue = "cpu", paramLabel = "cpu|cuda[:N]",
      converter = DeviceOptions.DeviceSpecConverter.class,
      description = "Run the vision tower on the CPU (default) or on CUDA device N (cuda is cuda:0; preprocessing "
          + "stays on the host; --weights f16, bf16, stored or mapped).")
  DeviceSpec device;

  @Option(names = "--kernels", defaultValue = "vector", paramLabel = "vector|onednn-bf16",
      converter = HostKernelsConverter.class,
      description = "With --device cpu: the kernels of the tower's matmuls: vector (default; float32, exact against the "
          + "scalar reference) or onednn-bf16 (matmuls of 16 tokens or more in BF16 on the system's oneDNN, libdnnl.so.3 or .so.2, "
          + "as PyTorch's BF16 stack computes them; AMX where the CPU has it).")
  HostKernels kernels;

  @Option(names = "--max-batch-images", defaultValue = "" + VisionWorkerConfig.DEFAULT_MAX_BATCH_IMAGES,
      paramLabel = "N",
      description = "With --device cuda: images per device pass at most, from one call or several calls waiting "
          + "together (on the CPU each image runs alone); default ${DEFAULT-VALUE}.")
  int maxBatchImages;

  @Option(names = "--gpu-memory-utilization", defaultValue = "" + VisionWorkerConfig.DEFAULT_GPU_MEMORY_UTILIZATION,
      paramLabel = "FRACTION",
      description = "With --device cuda or cuda-twin: the fraction of the GPU's total memory this worker may use for the "
          + "tower's weights and a pass's workspace, as a shard worker's (processes sharing a GPU each take their own; "
          + "default ${DEFAULT-VALUE}).")
  double gpuMemoryUtilization;

  @Override
  public Integer call() {
    if (maxBatchImages < 1) {
      throw new IllegalArgumentException("--max-batch-images must be >= 1 (images per device pass). Given: "
          + maxBatchImages);
    }
    NodeRunner.exitWithParent(node, spec.commandLine().getErr());
    NodeRunner.quietClusterLogging();
    try (ReloadingTls clusterTls = node.openClusterTls()) {
      GrpcServerConfig grpc = clusterTls == null ? node.grpc() : node.grpc().withCredentials(clusterTls.serverCredentials());
      VisionWorkerConfig defaults = VisionWorkerConfig.of(node.nodeId(), model, node.membership(), grpc, node.host());
      VisionWorkerConfig config = new VisionWorkerConfig(defaults.nodeId(), defaults.modelDir(), defaults.membership(),
          defaults.grpc(), defaults.advertisedHost(), node.metricsPort(), defaults.maxBatchSize(),
          defaults.maxImageBytes(), defaults.numEncodeThreads(), defaults.maxQueuedBatches(), weights, device,
          kernels, maxBatchImages, gpuMemoryUtilization);
      VisionWorkerNode worker = VisionWorkerNode.start(config);
      return NodeRunner.serveUntilInterrupted(worker,
          "owlery vision-worker: %s serving %s on %s (metrics on port %d)"
              .formatted(worker.nodeId(), model, worker.grpcAddress(), worker.metricsPort())
              + (worker.kernelsName() == null ? "" : ", kernels " + worker.kernelsName()),
          spec.commandLine().getErr());
    }
  }

  /** Parses {@code --kernels} (and local's {@code --vision-kernels}); anything else names the choices. */
  public static final class HostKernelsConverter implements picocli.CommandLine.ITypeConverter<HostKernels> {
    @Override
    public HostKernels convert(String value) {
      try {
        return HostKernels.parse(value);
      } catch (IllegalArgumentException e) {
        throw new picocli.CommandLine.TypeConversionException(e.getMessage());
      }
    }
  }
}
