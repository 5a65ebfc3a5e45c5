package dev.owlery.visionworker;

import dev.owlery.cluster.membership.ClusterMember;
import dev.owlery.cluster.metrics.MetricsEndpoint;
import dev.owlery.cluster.metrics.NodeMetrics;
import dev.owlery.cluster.registry.NodeDevice;
import dev.owlery.cluster.registry.NodeRegistration;
import dev.owlery.cluster.registry.NodeRegistry;
import dev.owlery.cluster.registry.NodeRole;
import dev.owlery.cluster.rpc.GrpcServer;
import dev.owlery.engine.cuda.device.CudaDevice;
import dev.owlery.engine.cuda.device.CudaDevices;
import dev.owlery.engine.cuda.device.DeviceProbe;
import dev.owlery.engine.cuda.device.DeviceSpec;
import dev.owlery.engine.cuda.runtime.CpuTwinDevice;
import dev.owlery.engine.cuda.runtime.CudaDriverDevice;
import dev.owlery.engine.cuda.runtime.Device;
import dev.owlery.engine.cuda.runtime.NoDeviceException;
import dev.owlery.engine.kernel.Kernels;
import dev.owlery.engine.onednn.OneDnnKernels;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;

/**
 * A running vision worker: the model's vision tower loaded once, a Hazelcast member with the node's
 * registry record (role VISION_WORKER, READY once serving), the gRPC server with the
 * {@code VisionWorker} and health services, and {@code /metrics}. Start with {@link
 * #start(VisionWorkerConfig)}; {@link #close()} drains and stops, bounded by the gRPC grace period
 * and the member's graceful-shutdown timeout.
 */
public final class VisionWorkerNode implements AutoCloseable {


  private final VisionWorkerConfig config;
  private final List<AutoCloseable> stopOrder;
  private final VisionWorkerService service;
  private final GrpcServer server;
  private final NodeRegistry registry;
  private final MetricsEndpoint metrics;
  private final String grpcAddress;
  private final AtomicBoolean closed = new AtomicBoolean();
  private final String kernelsName;

  private VisionWorkerNode(VisionWorkerConfig config, List<AutoCloseable> stopOrder, VisionWorkerService service,
      GrpcServer server, NodeRegistry registry, MetricsEndpoint metrics, String grpcAddress, String kernelsName) {
    this.kernelsName = kernelsName;
    this.config = config;
    this.stopOrder = stopOrder;
    this.service = service;
    this.server = server;
    this.registry = registry;
    this.metrics = metrics;
    this.grpcAddress = grpcAddress;
  }

  /**
   * Loads the vision tower, joins the cluster, starts serving and registers as READY.
   *
   * @throws IllegalArgumentException when the model directory is not a usable mPLUG-Owl2 checkpoint
   * @throws java.io.UncheckedIOException when an address cannot be bound
   */
  public static VisionWorkerNode start(VisionWorkerConfig config) {
    // Closed in reverse order of starting when a later step fails, and by close().
    List<AutoCloseable> started = new ArrayList<>();
    String kernelsName = null;
    try {
      Kernels hostKernels = config.device() instanceof DeviceSpec.Cpu ? config.hostKernels().open() : null;
      if (hostKernels instanceof OneDnnKernels oneDnn) {
        started.add(oneDnn); // its own, closed after the model that runs on it (the vector kernels are shared)
        kernelsName = "%s (oneDNN %s, %s)".formatted(oneDnn.name(), oneDnn.library().version(),
            oneDnn.library().cpuIsa());
      } else if (hostKernels != null) {
        kernelsName = hostKernels.name();
      }
      VisionModel model = switch (config.device()) {
        case DeviceSpec.Cpu cpu -> VisionModel.load(config.modelDir(), hostKernels, config.weights());
        case DeviceSpec.Cuda cuda -> {
          CudaDevice memory = probe(cuda); // before the tower's weights: what the plan may use
          yield VisionModel.loadOnDevice(config.modelDir(), config.weights(), open(cuda), memory,
              config.gpuMemoryUtilization(), config.maxBatchImages(), config.maxQueuedImages());
        }
        case DeviceSpec.CudaTwin twin -> VisionModel.loadOnDevice(config.modelDir(), config.weights(),
            new CpuTwinDevice(), twinMemory(), config.gpuMemoryUtilization(), config.maxBatchImages(),
            config.maxQueuedImages());
      };
      started.add(model);
      PrometheusMeterRegistry meters = NodeMetrics.newRegistry(config.nodeId(), "vision-worker");
      ThreadPoolExecutor encodeExecutor = new ThreadPoolExecutor(config.numEncodeThreads(), config.numEncodeThreads(),
          0, TimeUnit.SECONDS, new ArrayBlockingQueue<>(Math.max(1, config.maxQueuedBatches())),
          Thread.ofPlatform().name("owlery-vision-encode-", 0).daemon().factory());
      started.add(() -> shutdown(encodeExecutor));
      VisionWorkerService service = new VisionWorkerService(config.nodeId(), model, config.maxBatchSize(),
          config.maxImageBytes(), encodeExecutor, meters);
      ClusterMember member = ClusterMember.start(config.membership());
      started.add(member);
      NodeRegistry registry = new NodeRegistry(member);
      started.add(registry);
      GrpcServer server = GrpcServer.netty(config.grpc(), meters, List.of(service)).start();
      started.add(server);
      MetricsEndpoint metrics = MetricsEndpoint.start(config.grpc().host(), config.metricsPort(), meters);
      started.add(metrics);
      String grpcAddress = NodeRegistration.registerReady(registry, member, config.nodeId(), NodeRole.VISION_WORKER,
          config.advertisedHost(), server, metrics, registeredDevice(config));
      return new VisionWorkerNode(config, List.copyOf(started.reversed()), service, server, registry, metrics,
          grpcAddress, kernelsName);
    } catch (RuntimeException e) {
      NodeRegistration.closeAll(started.reversed(), e);
      throw e;
    }
  }

  /**
   * The device the tower runs on as {@code owlery status} shows it: a CUDA device as probed now
   * (its memory free after the tower's weights) and this worker's share of it, the twin with this
   * JVM's heap; null on the CPU.
   */
  private static NodeDevice registeredDevice(VisionWorkerConfig config) {
    CudaDevice memory = switch (config.device()) {
      case DeviceSpec.Cpu cpu -> null;
      case DeviceSpec.CudaTwin twin -> twinMemory();
      case DeviceSpec.Cuda cuda -> switch (CudaDevices.probe(cuda.index())) {
        case DeviceProbe.Found found -> found.device();
        case DeviceProbe.Unavailable unavailable -> null; // opened a moment ago: not expected
      };
    };
    return memory == null ? null : new NodeDevice(config.device().flagValue(), memory.index(), memory.name(),
        memory.computeCapability(), memory.totalBytes(), memory.freeBytes(), config.gpuMemoryUtilization(),
        config.weights().flagName());
  }

  /** The twin's memory: this JVM's heap, where its buffers live. */
  private static CudaDevice twinMemory() {
    return CudaDevice.twin(Runtime.getRuntime().maxMemory());
  }

  /**
   * CUDA device {@code cuda} as probed now, or one line saying why there is none.
   *
   * @throws IllegalArgumentException when there is none
   */
  private static CudaDevice probe(DeviceSpec.Cuda cuda) {
    return switch (CudaDevices.probe(cuda.index())) {
      case DeviceProbe.Found found -> found.device();
      case DeviceProbe.Unavailable(String reason) ->
          throw new IllegalArgumentException("device %s: %s".formatted(cuda.flagValue(), reason));
    };
  }

  /**
   * The kernels the tower runs on when it runs on the host ("vector-512", or "onednn-bf16 (oneDNN
   * 2.6.3, avx512_core_amx)"); null on a device.
   */
  public String kernelsName() {
    return kernelsName;
  }

  /**
   * A context on CUDA device {@code cuda}, or one line saying why there is none.
   *
   * @throws IllegalArgumentException when the device cannot be opened
   */
  private static Device open(DeviceSpec.Cuda cuda) {
    try {
      return CudaDriverDevice.open(cuda.index());
    } catch (NoDeviceException e) {
      throw new IllegalArgumentException("device %s: no CUDA device: %s".formatted(cuda.flagValue(), e.getMessage()));
    }
  }

  public String nodeId() {
    return config.nodeId();
  }

  /** "host:port" other nodes call, as registered. */
  public String grpcAddress() {
    return grpcAddress;
  }

  public int grpcPort() {
    return server.port();
  }

  public int metricsPort() {
    return metrics.port();
  }

  /**
   * Drains (registry DRAINING, health NOT_SERVING, new calls UNAVAILABLE), lets running encodes
   * finish within the gRPC grace period, deregisters, leaves the cluster and unmaps the weights.
   * Closing again does nothing.
   */
  @Override
  public void close() {
    if (!closed.compareAndSet(false, true)) {
      return;
    }
    service.drain();
    NodeRegistration.drainAndClose(registry, config.nodeId(), server, stopOrder);
  }

  private static void shutdown(ThreadPoolExecutor executor) throws InterruptedException {
    executor.shutdown();
    if (!executor.awaitTermination(5, TimeUnit.SECONDS)) {
      executor.shutdownNow();
    }
  }
}
