package dev.owlery.cli.node;

import dev.owlery.cli.WeightFormatConverter;
import dev.owlery.coordinator.api.ApiKeys;
import dev.owlery.engine.kernel.KernelsProvider.KernelSet;
import dev.owlery.engine.tensor.WeightFormat;
import dev.owlery.visionworker.HostKernels;
import dev.owlery.proto.v1.GetClusterStatusResponse;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** {@code owlery local}: a whole cluster of separate processes on this machine, up until interrupted. */
@Command(name = "local", mixinStandardHelpOptions = true,
    description = "Start a coordinator, vision workers and a shard group as separate processes on this machine.")
public final class LocalCommand implements Callable<Integer> {

  @Spec
  CommandSpec spec;

  @Option(names = "--model", required = true, description = "Model directory (mPLUG-Owl2, or a plain LLaMA with --vision-workers 0).")
  Path model;

  @Option(names = "--shards", description = "Shard workers in the tensor-parallel group (default 2, or one per "
      + "--devices entry beyond the standbys).")
  Integer shards;

  @Option(names = "--devices", paramLabel = "N,...", description = "Serve from devices: one per shard worker (the "
      + "group's ranks, then the standbys), each N or cuda:N (CUDA device N), or twin (the CUDA path on the CPU, slow, "
      + "for tests); shards listed on one CUDA device share it. Default: every shard on the CPU.")
  String devices;

  @Option(names = "--gpu-memory-utilization", defaultValue = "0.9", paramLabel = "FRACTION",
      description = "With --devices: the fraction of each device's memory its shard workers use together, split "
          + "evenly between them (default ${DEFAULT-VALUE}).")
  double gpuMemoryUtilization;

  @Option(names = "--standby-shards", defaultValue = "0",
      description = "Shard workers started beyond the group, waiting to replace a lost rank at once (default ${DEFAULT-VALUE}).")
  int standbyShards;

  @Option(names = "--vision-workers", defaultValue = "1", description = "Vision workers (default ${DEFAULT-VALUE}; 0 for a text-only model).")
  int visionWorkers;

  @Option(names = "--vision-devices", paramLabel = "D,...", description = "The device of each vision worker: cpu, N "
      + "or cuda:N (CUDA device N), or twin (the CUDA path on the CPU, slow, for tests). Default: every one on the CPU.")
  String visionDevices;

  @Option(names = "--vision-kernels", defaultValue = "vector", paramLabel = "vector|onednn-bf16",
      converter = VisionWorkerCommand.HostKernelsConverter.class,
      description = "The kernels of the vision workers on the CPU (see owlery vision-worker --kernels): vector (default) "
          + "or onednn-bf16 (the tower's matmuls in BF16 on the system's oneDNN).")
  HostKernels visionKernels;

  @Option(names = "--shard-kernels", defaultValue = "auto", paramLabel = "auto|vector|native|native-bf16",
      converter = ShardWorkerCommand.KernelSetConverter.class,
      description = "The decoder kernels of the shard workers (see owlery shard-worker --kernels): auto (default: "
          + "native where it can run, else vector; native-bf16 for --weights q8_0 and q4_0 where the CPU has "
          + "AVX512_BF16), vector, native (F16, BF16, Q8_0 and Q4_0 products in C compiled "
          + "here on first use, F16 and BF16 batches of up to 32 tokens, Q8_0 and Q4_0 prompts on AMX (Q8_0) or "
          + "AVX-512 VNNI; needs a C compiler) or native-bf16 (native, prompts in BF16: attention, and BF16 "
          + "weights' products of more than 32 tokens).")
  KernelSet shardKernels;

  @Option(names = "--port", defaultValue = "0", description = "The coordinator's public gRPC port; 0 picks a free one (default ${DEFAULT-VALUE}).")
  int port;

  @Option(names = "--ready-file", description = "Once every node is ready, write {\"coordinator\", \"nodes\": [...]} here as JSON.")
  Path readyFile;

  @Option(names = "--ready-timeout", defaultValue = "PT120S", description = "How long to wait for the cluster to be ready (default ${DEFAULT-VALUE}).")
  Duration readyTimeout;

  @Option(names = "--node-heap", defaultValue = "2g", description = "-Xmx of each node's JVM (default ${DEFAULT-VALUE}).")
  String nodeHeap;

  @Option(names = "--coordinator-arg", paramLabel = "ARG",
      description = "An option for the coordinator, e.g. --coordinator-arg=--max-num-seqs=32; repeatable.")
  List<String> coordinatorArgs = new ArrayList<>();

  @Option(names = "--api-keys", paramLabel = "FILE", description = "The coordinator requires these API keys (see owlery "
      + "coordinator --api-keys; limits with --coordinator-arg=--api-key-tokens-per-minute=N).")
  Path apiKeys;

  @Option(names = "--tls", description = "TLS on every link: mutual TLS between the nodes, TLS only on the public API; "
      + "each node's certificate comes from a development CA in --certs (owlery certs).")
  boolean tls;

  @Option(names = "--certs", paramLabel = "DIR", description = "With --tls: the folder of the development CA (made "
      + "there when missing) and the nodes' certificates; default: a new temporary folder.")
  Path certs;

  @Option(names = "--weights", defaultValue = "stored", converter = WeightFormatConverter.class,
      description = "How the shard and vision workers hold their weight matrices: mapped, stored, f16, bf16, q8_0 or q4_0 "
          + "(see owlery shard-worker --weights); default ${DEFAULT-VALUE}.")
  WeightFormat weights;

  @Option(names = "--http-port", paramLabel = "P",
      description = "The coordinator also serves the OpenAI-compatible HTTP API on this port (see owlery coordinator --http-port).")
  Integer httpPort;

  @Override
  public Integer call() {
    PrintWriter err = spec.commandLine().getErr();
    try {
      if (port != 0) {
        LoopbackPorts.requirePortFree(port); // at once, before any child starts
      }
      serveUntilStopped(err);
      return 0;
    } catch (LocalClusterException e) {
      err.println("owlery local: " + e.getMessage());
      err.flush();
      return 1;
    }
  }

  /** Where the cluster's certificates go with --tls; null without. */
  private Path certsDir() {
    if (!tls) {
      if (certs != null) {
        throw new IllegalArgumentException("--certs is the folder of --tls's certificates: give --tls too");
      }
      return null;
    }
    if (certs != null) {
      return certs;
    }
    try {
      return Files.createTempDirectory("owlery-local-certs");
    } catch (IOException e) {
      throw new UncheckedIOException("cannot make a folder for the cluster's certificates: " + e.getMessage(), e);
    }
  }

  /** {@code --shards}, or without it one shard per {@code --devices} entry beyond the standbys (else 2). */
  private int groupSize(DeviceList deviceList) {
    if (deviceList == null) {
      return shards == null ? 2 : shards;
    }
    int groupSize = shards == null ? deviceList.devices().size() - standbyShards : shards;
    if (groupSize < 1) {
      throw new IllegalArgumentException("--devices lists %d device(s), which --standby-shards %d takes all of; list "
          .formatted(deviceList.devices().size(), standbyShards) + "one more per shard of the group");
    }
    deviceList.requireOnePerShard(groupSize, standbyShards);
    return groupSize;
  }

  /** Starts the cluster and returns once its shutdown hook (Ctrl-C, SIGTERM) has stopped every node. */
  private void serveUntilStopped(PrintWriter err) {
    List<String> jvm = new ArrayList<>(List.of("-Xmx" + nodeHeap));
    List<String> coordinator = new ArrayList<>(coordinatorArgs);
    if (httpPort != null) {
      coordinator.add("--http-port=" + httpPort);
    }
    String ownKey = null;
    if (apiKeys != null) {
      ownKey = ApiKeys.secretsIn(apiKeys).getFirst(); // this command's own status calls use the file's first key
      coordinator.add("--api-keys=" + apiKeys.toAbsolutePath());
    }
    if (standbyShards < 0) {
      throw new LocalClusterException("--standby-shards must be >= 0, got " + standbyShards);
    }
    DeviceList deviceList = devices == null ? null : DeviceList.parse(devices, gpuMemoryUtilization);
    int groupSize = groupSize(deviceList);
    LocalClusterOptions options = LocalClusterOptions.DEFAULT.withJvmOptions(jvm).withCoordinatorArgs(coordinator)
        .withApiKey(ownKey).withCerts(certsDir()).withWeights(weights).withDevices(deviceList).withVisionKernels(visionKernels)
        .withShardKernels(shardKernels)
        .withVisionDevices(visionDevices == null ? List.of() : DeviceList.parseVision(visionDevices, visionWorkers));
    try (LocalCluster cluster = LocalCluster.start(model, groupSize, visionWorkers, port, err, options)) {
      for (int s = 0; s < standbyShards; s++) {
        cluster.startShardWorker();
      }
      GetClusterStatusResponse status = cluster.awaitReady(visionWorkers, readyTimeout);
      if (readyFile != null) {
        cluster.writeReadyFile(readyFile, status);
      }
      cluster.supervise();
      err.printf("owlery local: ready: coordinator on %s%s, %d shard worker(s) and %d standby, %d vision worker(s); a "
          + "node that dies is restarted; Ctrl-C stops them all%n",
          cluster.coordinatorAddress(), tls ? " over TLS (clients: --tls-ca " + cluster.tlsCa() + ")" : "", groupSize,
          standbyShards, visionWorkers);
      err.flush();
      cluster.awaitClosed();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
