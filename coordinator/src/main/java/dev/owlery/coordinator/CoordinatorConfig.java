package dev.owlery.coordinator;

import dev.owlery.cluster.membership.MembershipConfig;
import dev.owlery.cluster.rpc.GrpcChannelConfig;
import dev.owlery.cluster.rpc.GrpcServerConfig;
import dev.owlery.coordinator.api.ApiKeys;
import dev.owlery.coordinator.api.ApiLimits;
import dev.owlery.coordinator.http.HttpApiConfig;
import dev.owlery.coordinator.placement.ImageEmbeddingCache;
import dev.owlery.coordinator.placement.PlacementConfig;
import dev.owlery.coordinator.scheduler.SchedulerConfig;
import io.grpc.ChannelCredentials;
import io.grpc.ServerCredentials;
import java.nio.file.Path;
import java.time.Duration;

/**
 * How a coordinator starts.
 *
 * @param nodeId unique in the cluster, e.g. "coordinator-0"
 * @param modelDir the checkpoint folder on this machine; config.json and tokenizer.model are read, and the
 *     weights' headers once a shard serving from a device is placed (for its memory plan)
 * @param modelName the name requests and ListModels use; blank takes the folder's name
 * @param membership how the node joins the Hazelcast cluster
 * @param grpc where the public gRPC server listens (port 0 picks one)
 * @param advertisedHost the host other nodes and clients reach this one at (published in the registry)
 * @param metricsPort port of the Prometheus endpoint on the gRPC host, 0 picks one
 * @param channels the coordinator's channels to vision and shard workers
 * @param placement shard groups: size, what they load, KV and step capacity, load/health timeouts
 * @param scheduler step and release deadlines, queue bound
 * @param limits API defaults and limits
 * @param visionTimeout deadline of one EncodeImages call
 * @param imageCacheBytes most bytes of visual embeddings cached by image content, >= 0 (0 disables)
 * @param apiKeys the keys the public API requires ({@link ApiKeys#NONE}: none required)
 * @param http the OpenAI-compatible HTTP API ({@link HttpApiConfig#OFF}: none)
 */
public record CoordinatorConfig(
    String nodeId,
    Path modelDir,
    String modelName,
    MembershipConfig membership,
    GrpcServerConfig grpc,
    String advertisedHost,
    int metricsPort,
    GrpcChannelConfig channels,
    PlacementConfig placement,
    SchedulerConfig scheduler,
    ApiLimits limits,
    Duration visionTimeout,
    long imageCacheBytes,
    ApiKeys apiKeys,
    HttpApiConfig http) {

  public CoordinatorConfig {
    if (nodeId == null || nodeId.isBlank()) {
      throw new IllegalArgumentException("nodeId must not be blank. Given: '" + nodeId + "'");
    }
    if (modelDir == null || membership == null || grpc == null || channels == null || placement == null
        || scheduler == null || limits == null || apiKeys == null || http == null) {
      throw new IllegalArgumentException("modelDir, membership, grpc, channels, placement, scheduler, limits, "
          + "apiKeys and http must be set");
    }
    modelName = modelName == null ? "" : modelName;
    if (advertisedHost == null || advertisedHost.isBlank()) {
      throw new IllegalArgumentException("advertisedHost must not be blank. Given: '" + advertisedHost + "'");
    }
    if (metricsPort < 0 || metricsPort > 65535) {
      throw new IllegalArgumentException("metricsPort must be in 0..65535. Given: " + metricsPort);
    }
    if (visionTimeout == null || visionTimeout.isNegative() || visionTimeout.isZero()) {
      throw new IllegalArgumentException("visionTimeout must be a positive duration. Given: " + visionTimeout);
    }
    if (imageCacheBytes < 0) {
      throw new IllegalArgumentException("imageCacheBytes must be >= 0 (0 disables the cache). Given: "
          + imageCacheBytes);
    }
  }

  /**
   * A coordinator with the defaults: the model named after its folder, shards loading the same
   * path, groups of {@code worldSize}, metrics on a free port, 5 s per step, 30 s per image batch,
   * 256 MiB of cached image embeddings, no API keys, no HTTP API.
   */
  public static CoordinatorConfig of(String nodeId, Path modelDir, MembershipConfig membership, GrpcServerConfig grpc,
      String advertisedHost, int worldSize) {
    return new CoordinatorConfig(nodeId, modelDir, "", membership, grpc, advertisedHost, 0, GrpcChannelConfig.defaults(),
        PlacementConfig.of(worldSize, modelDir.toAbsolutePath().normalize().toString()), SchedulerConfig.defaults(),
        ApiLimits.defaults(), Duration.ofSeconds(30), ImageEmbeddingCache.DEFAULT_MAX_BYTES, ApiKeys.NONE,
        HttpApiConfig.OFF);
  }

  public CoordinatorConfig withMetricsPort(int newMetricsPort) {
    return new CoordinatorConfig(nodeId, modelDir, modelName, membership, grpc, advertisedHost, newMetricsPort, channels,
        placement, scheduler, limits, visionTimeout, imageCacheBytes, apiKeys, http);
  }

  public CoordinatorConfig withPlacement(PlacementConfig newPlacement) {
    return new CoordinatorConfig(nodeId, modelDir, modelName, membership, grpc, advertisedHost, metricsPort, channels,
        newPlacement, scheduler, limits, visionTimeout, imageCacheBytes, apiKeys, http);
  }

  public CoordinatorConfig withScheduler(SchedulerConfig newScheduler) {
    return new CoordinatorConfig(nodeId, modelDir, modelName, membership, grpc, advertisedHost, metricsPort, channels,
        placement, newScheduler, limits, visionTimeout, imageCacheBytes, apiKeys, http);
  }

  public CoordinatorConfig withLimits(ApiLimits newLimits) {
    return new CoordinatorConfig(nodeId, modelDir, modelName, membership, grpc, advertisedHost, metricsPort, channels,
        placement, scheduler, newLimits, visionTimeout, imageCacheBytes, apiKeys, http);
  }

  public CoordinatorConfig withImageCacheBytes(long newImageCacheBytes) {
    return new CoordinatorConfig(nodeId, modelDir, modelName, membership, grpc, advertisedHost, metricsPort, channels,
        placement, scheduler, limits, visionTimeout, newImageCacheBytes, apiKeys, http);
  }

  /** This coordinator with {@code api} on its public server and {@code internal} on its channels to the workers. */
  public CoordinatorConfig withCredentials(ServerCredentials api, ChannelCredentials internal) {
    return new CoordinatorConfig(nodeId, modelDir, modelName, membership, grpc.withCredentials(api), advertisedHost,
        metricsPort, channels.withCredentials(internal), placement, scheduler, limits, visionTimeout, imageCacheBytes,
        apiKeys, http);
  }

  public CoordinatorConfig withApiKeys(ApiKeys newApiKeys) {
    return new CoordinatorConfig(nodeId, modelDir, modelName, membership, grpc, advertisedHost, metricsPort, channels,
        placement, scheduler, limits, visionTimeout, imageCacheBytes, newApiKeys, http);
  }

  public CoordinatorConfig withHttp(HttpApiConfig newHttp) {
    return new CoordinatorConfig(nodeId, modelDir, modelName, membership, grpc, advertisedHost, metricsPort, channels,
        placement, scheduler, limits, visionTimeout, imageCacheBytes, apiKeys, newHttp);
  }
}
