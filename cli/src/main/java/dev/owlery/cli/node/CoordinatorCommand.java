package dev.owlery.cli.node;

import dev.owlery.cluster.tls.ReloadingTls;
import dev.owlery.coordinator.CoordinatorConfig;
import dev.owlery.coordinator.api.ApiKeys;
import dev.owlery.coordinator.api.KeyLimits;
import dev.owlery.coordinator.http.HttpApiConfig;
import dev.owlery.coordinator.placement.ServingProfile;
import dev.owlery.coordinator.CoordinatorNode;
import dev.owlery.coordinator.scheduler.SchedulerConfig;
import dev.owlery.engine.kv.KvCacheDtype;
import io.grpc.InsecureChannelCredentials;
import io.grpc.InsecureServerCredentials;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** {@code owlery coordinator}: the public endpoint, scheduler and placement authority. */
@Command(name = "coordinator", mixinStandardHelpOptions = true,
    description = "Run the coordinator (public gRPC API, placement of shard groups, scheduling) until interrupted.")
public final class CoordinatorCommand implements Callable<Integer> {

  @Spec
  CommandSpec spec;

  @Mixin
  NodeOptions node;

  @Option(names = "--model", required = true, description = "The model directory (the shard workers load the same path).")
  Path model;

  @Option(names = "--group-size", defaultValue = "1", description = "Shard workers per tensor-parallel group (default ${DEFAULT-VALUE}).")
  int groupSize;

  @Option(names = "--max-groups", defaultValue = "0",
      description = "Shard groups to form at most; shard workers beyond them wait as standbys and replace a lost rank at once "
          + "(default ${DEFAULT-VALUE}: a group for every --group-size free shard workers).")
  int maxGroups;

  @Option(names = "--profile", paramLabel = "cpu|gpu",
      description = "What the shard workers compute on, for the defaults of --max-num-seqs and --max-num-batched-tokens and the "
          + "step pacer's first estimate: cpu (default; 16 sequences, 512 rows, 1 GFLOP/s a shard) or gpu (256, 8192, 100 TFLOP/s).")
  String profile;

  @Option(names = "--max-num-seqs",
      description = "Sequences a shard group runs at once, all in every step (default 16; 256 with --profile gpu).")
  Integer maxNumSequences;

  @Option(names = "--max-num-batched-tokens",
      description = "Rows one step carries: decode rows first, prompts prefilled in chunks of what is left "
          + "(default 512; 8192 with --profile gpu).")
  Integer maxNumBatchedTokens;

  @Option(names = "--block-size", defaultValue = "16", description = "Positions per KV cache block (default ${DEFAULT-VALUE}).")
  int blockSize;

  @Option(names = "--kv-cache-tokens", defaultValue = "0",
      description = "KV pool of each shard group in positions; 0 = by --kv-cache-bytes, or half the smallest shard's heap (at most a full context per sequence).")
  long kvCacheTokens;

  @Option(names = "--kv-cache-bytes", defaultValue = "0", description = "KV pool in bytes on each shard worker (instead of --kv-cache-tokens).")
  long kvCacheBytes;

  @Option(names = "--kv-cache-dtype", paramLabel = "f16|f32",
      description = "How shard workers store the KV cache: f16 (default; half the memory per position) or f32 (the engine's arithmetic exactly).")
  String kvCacheDtype;

  @Option(names = "--max-queued", defaultValue = "64",
      description = "Requests waiting per shard group before RESOURCE_EXHAUSTED (default ${DEFAULT-VALUE}).")
  int maxQueued;

  @Option(names = "--reform-timeout", defaultValue = "PT30S",
      description = "How long the requests of a shard group that lost a rank wait for it to be re-formed (or another group to be READY) "
          + "before they end with UNAVAILABLE (default ${DEFAULT-VALUE}).")
  Duration reformTimeout;

  @Option(names = "--max-admitted", defaultValue = "256",
      description = "Generate calls admitted at once (encoding images, waiting or running) before RESOURCE_EXHAUSTED (default ${DEFAULT-VALUE}).")
  int maxAdmitted;

  @Option(names = "--image-cache-bytes", defaultValue = "268435456",
      description = "Bytes of visual embeddings cached by image content, least recently used evicted; 0 disables (default ${DEFAULT-VALUE}).")
  long imageCacheBytes;

  @Option(names = "--api-keys", paramLabel = "FILE",
      description = "Require an API key on every call but health checks: one key per line (16+ characters; blank "
          + "lines and # comments ignored), or the JSON form {\"keys\": [{\"id\", \"sha256\", \"requests_per_second\", "
          + "\"tokens_per_minute\"}]} (README). Clients send 'authorization: Bearer KEY' (--api-key, OWLERY_API_KEY).")
  Path apiKeys;

  @Option(names = "--api-key-requests-per-second", defaultValue = "0",
      description = "With --api-keys: calls each key may make per second, then RESOURCE_EXHAUSTED; 0 = no limit (default ${DEFAULT-VALUE}).")
  double apiKeyRequestsPerSecond;

  @Option(names = "--api-key-tokens-per-minute", defaultValue = "0",
      description = "With --api-keys: tokens each key may have generated per minute, then RESOURCE_EXHAUSTED; 0 = no limit (default ${DEFAULT-VALUE}).")
  long apiKeyTokensPerMinute;

  @Option(names = "--tls-cert", paramLabel = "FILE",
      description = "With --tls-key: serve the public API over TLS only, with this certificate (PEM, reread when it changes).")
  Path tlsCert;

  @Option(names = "--tls-key", paramLabel = "FILE", description = "The private key (PEM, PKCS#8) of --tls-cert.")
  Path tlsKey;

  @Option(names = "--tls-client-ca", paramLabel = "FILE",
      description = "With --tls-cert: clients must present a certificate this CA (PEM) signed.")
  Path tlsClientCa;

  @Option(names = "--http-port", paramLabel = "P",
      description = "Also serve the OpenAI-compatible HTTP API (/v1/chat/completions, /v1/completions, /v1/models, "
          + "/health) on this port of the gRPC host; 0 picks one. Keys as for gRPC: 'Authorization: Bearer KEY'.")
  Integer httpPort;

  @Option(names = "--http-image-url-prefix", paramLabel = "PREFIX", split = ",",
      description = "With --http-port: fetch image_url parts from http(s) URLs starting with PREFIX "
          + "(http(s)://HOST[:PORT]/..., ending in '/'); repeatable. Without it only data: URIs are taken.")
  List<String> httpImageUrlPrefixes = new ArrayList<>();

  @Override
  public Integer call() {
    NodeRunner.exitWithParent(node, spec.commandLine().getErr());
    NodeRunner.quietClusterLogging();
    try (ReloadingTls clusterTls = node.openClusterTls(); ReloadingTls apiTls = openApiTls()) {
      CoordinatorNode coordinator = CoordinatorNode.start(config().withCredentials(
          apiTls == null ? InsecureServerCredentials.create() : apiTls.serverCredentials(),
          clusterTls == null ? InsecureChannelCredentials.create() : clusterTls.channelCredentials()));
      return NodeRunner.serveUntilInterrupted(coordinator,
          "owlery coordinator: %s serving %s on %s%s (groups of %d shard workers; metrics on port %d%s)"
              .formatted(coordinator.nodeId(), model, coordinator.grpcAddress(), apiTls == null ? "" : " over TLS",
                  groupSize, coordinator.metricsPort(),
                  httpPort == null ? "" : "; HTTP API on port " + coordinator.httpPort()),
          spec.commandLine().getErr());
    }
  }

  /** The public API's TLS from --tls-cert, --tls-key and --tls-client-ca; null for plaintext. */
  private ReloadingTls openApiTls() {
    if (tlsCert == null && tlsKey == null && tlsClientCa == null) {
      return null;
    }
    if (tlsCert == null || tlsKey == null) {
      throw new IllegalArgumentException("--tls-cert and --tls-key go together (and --tls-client-ca needs them)");
    }
    return ReloadingTls.open(tlsCert, tlsKey, tlsClientCa);
  }

  /** The coordinator's configuration from the options. */
  CoordinatorConfig config() {
    CoordinatorConfig defaults = CoordinatorConfig.of(node.nodeId(), model, node.membership(), node.grpc(), node.host(), groupSize);
    ServingProfile serving = profile == null ? ServingProfile.CPU : ServingProfile.parse("--profile", profile);
    return defaults.withMetricsPort(node.metricsPort())
        .withPlacement(defaults.placement().withBatch(
                maxNumSequences == null ? serving.maxNumSequences() : maxNumSequences,
                maxNumBatchedTokens == null ? serving.maxNumBatchedTokens() : maxNumBatchedTokens)
            .withKvCache(blockSize, kvCacheTokens, kvCacheBytes).withMaxGroups(maxGroups)
            .withKvCacheDtype(kvCacheDtype == null ? KvCacheDtype.DEFAULT : KvCacheDtype.parse("--kv-cache-dtype", kvCacheDtype)))
        .withScheduler(defaults.scheduler().withMaxQueuedPerGroup(maxQueued).withReformTimeout(reformTimeout)
            .withProfile(serving))
        .withLimits(defaults.limits().withMaxAdmittedRequests(maxAdmitted))
        .withImageCacheBytes(imageCacheBytes)
        .withApiKeys(apiKeys())
        .withHttp(http());
  }

  private HttpApiConfig http() {
    if (httpPort == null) {
      if (!httpImageUrlPrefixes.isEmpty()) {
        throw new IllegalArgumentException("--http-image-url-prefix is for the HTTP API: give --http-port P too");
      }
      return HttpApiConfig.OFF;
    }
    return HttpApiConfig.onPort(httpPort).withImageUrlPrefixes(httpImageUrlPrefixes);
  }

  private ApiKeys apiKeys() {
    KeyLimits limits = new KeyLimits(apiKeyRequestsPerSecond, apiKeyTokensPerMinute);
    if (apiKeys == null) {
      if (!limits.equals(KeyLimits.NONE)) {
        throw new IllegalArgumentException("--api-key-requests-per-second and --api-key-tokens-per-minute limit API "
            + "keys: give --api-keys FILE too");
      }
      return ApiKeys.NONE;
    }
    return ApiKeys.read(apiKeys, limits);
  }
}
