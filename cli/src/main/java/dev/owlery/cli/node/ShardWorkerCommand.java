package dev.owlery.cli.node;

import dev.owlery.cli.DeviceOptions;
import dev.owlery.cli.WeightFormatConverter;
import dev.owlery.cluster.tls.ReloadingTls;
import dev.owlery.engine.kernel.KernelsProvider.KernelSet;
import dev.owlery.engine.tensor.WeightFormat;
import dev.owlery.shard.collective.CollectiveConfig;
import dev.owlery.shard.node.ShardWorkerNode;
import dev.owlery.shard.node.ShardWorkerNodeConfig;
import dev.owlery.shard.worker.ShardDevice;
import dev.owlery.shard.worker.ShardWorkerConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** {@code owlery shard-worker}: a node the coordinator places into a tensor-parallel group. */
@Command(name = "shard-worker", mixinStandardHelpOptions = true,
    description = "Run a shard worker until interrupted; the coordinator tells it which slice of which model to load.")
public final class ShardWorkerCommand implements Callable<Integer> {

  private static final String DEFAULT_SHARED_MEMORY = "/dev/shm";

  @Spec
  CommandSpec spec;

  @Mixin
  NodeOptions node;

  @Option(names = "--allow-model-dir", description = "Model directories this worker may load (repeatable; default: any).")
  List<Path> allowedModelDirs = new ArrayList<>();

  @Option(names = "--threads", description = "Compute threads (default: one per available processor).")
  Integer threads;

  @Option(names = "--kernels", paramLabel = "auto|vector|native|native-bf16", converter = KernelSetConverter.class,
      description = "The decoder's kernels: vector (the Vector API, float32 arithmetic), native (decode's F16, BF16, "
          + "Q8_0 and Q4_0 products, Q8_0 and Q4_0 products of several tokens on AMX (Q8_0) or AVX-512 VNNI "
          + "where the CPU has them and F16 and BF16 products of 2 to 32 tokens, in C compiled on this machine on "
          + "first use, needs a C compiler; Q8_0 and Q4_0 weights are multiplied by activations quantized to Q8_0, "
          + "as llama.cpp does), native-bf16 (native, with prompts multiplying in BF16 on "
          + "AVX512_BF16: attention, and BF16 weights' products of more than 32 tokens, their activations rounded "
          + "to BF16; decode stays float32) or auto (native where it can run, else vector, saying "
          + "why; with --weights q8_0 or q4_0, native-bf16 where the CPU has AVX512_BF16: those weights and "
          + "their activations already hold 8 bits). Default: -Dowlery.kernels, else auto.")
  KernelSet kernels;

  @Option(names = "--weights", defaultValue = "stored", converter = WeightFormatConverter.class,
      description = "The slice's weight matrices: mapped (read in place), stored (copied as stored into memory of its own), f16, bf16, q8_0 or q4_0 (converted once at load); default ${DEFAULT-VALUE}.")
  WeightFormat weights;

  @Mixin
  DeviceOptions device;

  @Option(names = "--peer-shared-memory", defaultValue = DEFAULT_SHARED_MEMORY, paramLabel = "DIR|off",
      description = "Folder of host shared memory through which this worker exchanges all-reduce partials with the "
          + "peers of its group on the same host, instead of gRPC messages (peers elsewhere: gRPC); off: gRPC only. "
          + "Default ${DEFAULT-VALUE}, where it exists.")
  String peerSharedMemory;

  /** The folder of {@code --peer-shared-memory}; null for off, or for the default where it does not exist. */
  Path peerSharedMemoryDir() {
    if (peerSharedMemory.equals("off")) {
      return null;
    }
    Path dir = Path.of(peerSharedMemory);
    if (Files.isDirectory(dir)) {
      return dir;
    }
    if (peerSharedMemory.equals(DEFAULT_SHARED_MEMORY)) {
      return null;
    }
    throw new ParameterException(spec.commandLine(), "--peer-shared-memory must be a folder or off. Given: "
        + peerSharedMemory + " (no such folder)");
  }

  /** Parses {@code --kernels}: auto, vector, native or native-bf16 (the scalar reference is for tests, through -Dowlery.kernels). */
  static final class KernelSetConverter implements CommandLine.ITypeConverter<KernelSet> {
    @Override
    public KernelSet convert(String value) {
      return switch (value.strip().toLowerCase(Locale.ROOT)) {
        case "auto" -> KernelSet.AUTO;
        case "vector" -> KernelSet.VECTOR;
        case "native" -> KernelSet.NATIVE;
        case "native-bf16" -> KernelSet.NATIVE_BF16;
        default -> throw new CommandLine.TypeConversionException(
            "--kernels must be auto, vector, native or native-bf16, got \"" + value + "\"");
      };
    }
  }

  @Override
  public Integer call() {
    ShardDevice serving = device.shardDevice();
    NodeRunner.exitWithParent(node, spec.commandLine().getErr());
    NodeRunner.quietClusterLogging();
    ShardWorkerNodeConfig config = ShardWorkerNodeConfig.of(node.host(), node.grpc().port(), node.metricsPort(), node.membership())
        .withNodeId(node.nodeId()).withDrainTimeout(node.drainTimeout())
        .withWorker(ShardWorkerConfig.defaults().withAllowedModelDirs(allowedModelDirs).withWeights(weights)
            .withDevice(serving)
            .withCollective(CollectiveConfig.defaults().withSharedMemory(peerSharedMemoryDir())));
    if (threads != null) {
      config = config.withComputeThreads(threads);
    }
    if (kernels != null) {
      config = config.withKernels(kernels);
    }
    try (ReloadingTls clusterTls = node.openClusterTls()) {
      ShardWorkerNode worker = ShardWorkerNode.start(clusterTls == null ? config : config.withClusterTls(clusterTls));
      return NodeRunner.serveUntilInterrupted(worker,
          "owlery shard-worker: %s serving on %s, kernels %s".formatted(worker.nodeId(), worker.record().grpcAddress(),
              worker.kernels()),
          spec.commandLine().getErr());
    }
  }
}
