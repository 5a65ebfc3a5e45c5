package dev.owlery.coordinator;

import dev.owlery.cluster.membership.ClusterMember;
import dev.owlery.cluster.metrics.MetricsEndpoint;
import dev.owlery.cluster.metrics.NodeMetrics;
import dev.owlery.cluster.registry.NodeRecord;
import dev.owlery.cluster.registry.NodeRegistration;
import dev.owlery.cluster.registry.NodeRegistry;
import dev.owlery.cluster.registry.NodeRole;
import dev.owlery.cluster.rpc.GrpcChannels;
import dev.owlery.cluster.rpc.GrpcServer;
import dev.owlery.coordinator.api.ApiKeyInterceptor;
import dev.owlery.coordinator.api.ApiKeys;
import dev.owlery.coordinator.api.OwleryService;
import dev.owlery.coordinator.api.RequestValidator;
import dev.owlery.coordinator.http.OpenAiHttpServer;
import dev.owlery.coordinator.model.ServedModel;
import dev.owlery.coordinator.placement.DrivenGroups;
import dev.owlery.coordinator.placement.ImageEmbeddingCache;
import dev.owlery.coordinator.placement.NodeChannels;
import dev.owlery.coordinator.placement.Placement;
import dev.owlery.coordinator.placement.PlacementLeadership;
import dev.owlery.coordinator.placement.VisionWorkerPool;
import dev.owlery.coordinator.scheduler.GenerationMetrics;
import dev.owlery.coordinator.scheduler.Scheduler;
import io.grpc.BindableService;
import io.grpc.ServerInterceptors;
import io.grpc.ServerServiceDefinition;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.UUID;
import java.util.concurrent.ThreadLocalRandom;

/**
 * A running coordinator: the served model's config and tokenizer, a Hazelcast member with the
 * node's registry record (role COORDINATOR, READY once serving), its part in the election of the
 * placement leader, placement (forming shard groups while this coordinator leads), the groups it
 * drives and the scheduler stepping them, the vision worker pool, the public gRPC server ({@code
 * owlery.v1.Owlery} and health), {@code /metrics} and, when configured, the OpenAI-compatible HTTP API. Start with {@link #start(CoordinatorConfig)};
 * {@link #close()} drains and stops, each wait bounded.
 */
public final class CoordinatorNode implements AutoCloseable {


  private final CoordinatorConfig config;
  private final List<AutoCloseable> stopOrder;
  private final GrpcServer server;
  private final NodeRegistry registry;
  private final MetricsEndpoint metrics;
  /** The HTTP API, or null without one. */
  private final OpenAiHttpServer http;
  private final String grpcAddress;
  private final PlacementLeadership leadership;
  private final DrivenGroups driven;
  private final AtomicBoolean closed = new AtomicBoolean();

  private CoordinatorNode(CoordinatorConfig config, List<AutoCloseable> stopOrder, GrpcServer server,
      NodeRegistry registry, MetricsEndpoint metrics, OpenAiHttpServer http, String grpcAddress,
      PlacementLeadership leadership, DrivenGroups driven) {
    this.leadership = leadership;
    this.driven = driven;
    this.config = config;
    this.stopOrder = stopOrder;
    this.server = server;
    this.registry = registry;
    this.metrics = metrics;
    this.http = http;
    this.grpcAddress = grpcAddress;
  }

  /**
   * Reads the model's config and tokenizer, joins the cluster, starts placing shard groups and
   * serving, and registers as READY. Generate answers UNAVAILABLE until a shard group is READY.
   *
   * @throws IllegalArgumentException when the model directory cannot be served
   * @throws java.io.UncheckedIOException when an address cannot be bound
   */
  public static CoordinatorNode start(CoordinatorConfig config) {
    List<AutoCloseable> started = new ArrayList<>();
    try {
      ServedModel model = ServedModel.load(config.modelDir(), config.modelName());
      PrometheusMeterRegistry meters = NodeMetrics.newRegistry(config.nodeId(), "coordinator");
      GenerationMetrics generationMetrics = new GenerationMetrics(meters);
      NodeChannels channels = new NodeChannels(address -> GrpcChannels.forTarget(address, config.channels()));
      started.add(channels);
      ClusterMember member = ClusterMember.start(config.membership());
      started.add(member);
      NodeRegistry registry = new NodeRegistry(member);
      started.add(registry);
      VisionWorkerPool vision = new VisionWorkerPool(() -> registry.nodes(NodeRole.VISION_WORKER), channels,
          config.visionTimeout(), config.scheduler().reformTimeout(), model.numImageTokens(), model.text().hiddenSize());
      started.add(vision);
      UUID visionListener = registry.addListener(vision);
      started.add(() -> registry.removeListener(visionListener));
      vision.sync();
      PlacementLeadership leadership = new PlacementLeadership(member, config.nodeId());
      started.add(leadership);
      DrivenGroups driven = new DrivenGroups(member, config.nodeId(), channels);
      started.add(driven);
      Placement placement = new Placement(config.placement(), model.vocabSize(), model.maxPositions(),
          model.kvBytesPerToken(config.placement().worldSize(), config.placement().kvCacheDtype()), model.text(),
          config.modelDir(), member, registry, channels, leadership).start();
      started.add(placement);
      leadership.start(placement::leadershipChanged);
      Scheduler scheduler = new Scheduler(config.scheduler(), config.placement(), driven, model, generationMetrics);
      started.add(scheduler);
      ImageEmbeddingCache imageCache = new ImageEmbeddingCache(vision::encode, config.imageCacheBytes(), meters);
      OwleryService service = new OwleryService(model,
          new RequestValidator(model, config.limits(), () -> ThreadLocalRandom.current().nextLong()), imageCache,
          scheduler, driven, () -> registry.nodes().stream().map(NodeRecord::toProto).toList(), generationMetrics);
      Gauge.builder("owlery.groups.ready", driven, groups -> groups.servingGroups().size())
          .description("Shard groups READY to take sequences").register(meters);
      GrpcServer server = GrpcServer.netty(config.grpc(), meters, List.of(guarded(service, config.apiKeys(),
          generationMetrics))).start();
      started.add(server);
      MetricsEndpoint metrics = MetricsEndpoint.start(config.grpc().host(), config.metricsPort(), meters);
      started.add(metrics);
      OpenAiHttpServer http = null;
      if (config.http().enabled()) {
        http = startHttp(config, model, service, generationMetrics, meters, started);
      }
      String grpcAddress = NodeRegistration.registerReady(registry, member, config.nodeId(), NodeRole.COORDINATOR,
          config.advertisedHost(), server, metrics);
      return new CoordinatorNode(config, List.copyOf(started.reversed()), server, registry, metrics, http, grpcAddress,
          leadership, driven);
    } catch (RuntimeException e) {
      NodeRegistration.closeAll(started.reversed(), e);
      throw e;
    }
  }

  /**
   * The OpenAI-compatible HTTP API: a front calling the same service (behind the same interceptors)
   * through an in-process gRPC server of its own, so HTTP requests take the gRPC path.
   */
  private static OpenAiHttpServer startHttp(CoordinatorConfig config, ServedModel model, OwleryService service,
      GenerationMetrics generationMetrics, PrometheusMeterRegistry meters, List<AutoCloseable> started) {
    String name = "owlery-http-" + config.nodeId() + "-" + UUID.randomUUID();
    GrpcServer local = new GrpcServer(InProcessServerBuilder.forName(name), config.grpc().shutdownGrace(), meters,
        List.of(guarded(service, config.apiKeys(), generationMetrics))).start();
    long maxImagesBase64 = (long) config.limits().maxImagesPerRequest() * (4L * config.limits().maxImageBytes() / 3 + 4);
    int maxBodyBytes = (int) Math.min(Integer.MAX_VALUE - 8, maxImagesBase64 + (1 << 20));
    OpenAiHttpServer http;
    try {
      http = OpenAiHttpServer.start(config.http(), config.grpc().host(), InProcessChannelBuilder.forName(name).build(),
          model.name(), maxBodyBytes, config.limits().maxImageBytes());
    } catch (RuntimeException e) {
      local.close();
      throw e;
    }
    // Closed in reverse: the in-process server first, so that HTTP calls in flight finish within the
    // grace period while new ones are refused (503), then the HTTP server.
    started.add(http);
    started.add(local);
    return http;
  }

  /** The service behind an {@link ApiKeyInterceptor} when keys are required; the health service stays open. */
  private static BindableService guarded(OwleryService service, ApiKeys keys, GenerationMetrics metrics) {
    if (!keys.required()) {
      return service;
    }
    ServerServiceDefinition definition = ServerInterceptors.intercept(service, new ApiKeyInterceptor(keys, metrics));
    return () -> definition;
  }

  public String nodeId() {
    return config.nodeId();
  }

  /** "host:port" of the public gRPC server, as registered. */
  public String grpcAddress() {
    return grpcAddress;
  }

  /** The placement leader this coordinator last saw (null before its first look). */
  public PlacementLeadership.Leader placementLeader() {
    return leadership.leader();
  }

  /** The READY groups this coordinator drives, by id. */
  public List<String> drivenGroupIds() {
    return driven.servingGroups().stream().map(group -> group.groupId()).toList();
  }

  public int grpcPort() {
    return server.port();
  }

  public int metricsPort() {
    return metrics.port();
  }

  /** The OpenAI-compatible HTTP API's port. */
  public int httpPort() {
    if (http == null) {
      throw new IllegalStateException("this coordinator serves no HTTP API (CoordinatorConfig.http is OFF)");
    }
    return http.port();
  }

  /**
   * Drains (registry DRAINING, health NOT_SERVING), lets in-flight requests finish within the gRPC
   * grace period (then cancels them; their sequences are released), stops placing, deregisters
   * and leaves the cluster. Shard groups stay loaded for the next coordinator. Closing again does
   * nothing.
   */
  @Override
  public void close() {
    if (!closed.compareAndSet(false, true)) {
      return;
    }
    NodeRegistration.drainAndClose(registry, config.nodeId(), server, stopOrder);
  }

}
