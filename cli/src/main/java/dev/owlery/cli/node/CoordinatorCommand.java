package dev.owlery.cli.node;

import dev.owlery.coordinator.CoordinatorConfig;
import dev.owlery.coordinator.api.ApiKeys;
import dev.owlery.coordinator.api.KeyLimits;
import dev.owlery.coordinator.CoordinatorNode;
import java.nio.file.Path;
import java.time.Duration;
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

  @Option(names = "--max-num-seqs", defaultValue = "16",
      description = "Sequences a shard group runs at once, all in every step (default ${DEFAULT-VALUE}).")
  int maxNumSequences;

  @Option(names = "--max-num-batched-tokens", defaultValue = "512",
      description = "Rows one step carries: decode rows first, prompts prefilled in chunks of what is left (default ${DEFAULT-VALUE}).")
  int maxNumBatchedTokens;

  @Option(names = "--block-size", defaultValue = "16", description = "Positions per KV cache block (default ${DEFAULT-VALUE}).")
  int blockSize;

  @Option(names = "--kv-cache-tokens", defaultValue = "0",
      description = "KV pool of each shard group in positions; 0 = by --kv-cache-bytes, or half the smallest shard's heap (at most a full context per sequence).")
  long kvCacheTokens;

  @Option(names = "--kv-cache-bytes", defaultValue = "0", description = "KV pool in bytes on each shard worker (instead of --kv-cache-tokens).")
  long kvCacheBytes;

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

  @Override
  public Integer call() {
    NodeRunner.exitWithParent(node, spec.commandLine().getErr());
    NodeRunner.quietClusterLogging();
    CoordinatorNode coordinator = CoordinatorNode.start(config());
    return NodeRunner.serveUntilInterrupted(coordinator,
        "owlery coordinator: %s serving %s on %s (groups of %d shard workers; metrics on port %d)"
            .formatted(coordinator.nodeId(), model, coordinator.grpcAddress(), groupSize, coordinator.metricsPort()),
        spec.commandLine().getErr());
  }

  /** The coordinator's configuration from the options. */
  CoordinatorConfig config() {
    CoordinatorConfig defaults = CoordinatorConfig.of(node.nodeId(), model, node.membership(), node.grpc(), node.host(), groupSize);
    return defaults.withMetricsPort(node.metricsPort())
        .withPlacement(defaults.placement().withBatch(maxNumSequences, maxNumBatchedTokens)
            .withKvCache(blockSize, kvCacheTokens, kvCacheBytes).withMaxGroups(maxGroups))
        .withScheduler(defaults.scheduler().withMaxQueuedPerGroup(maxQueued).withReformTimeout(reformTimeout))
        .withLimits(defaults.limits().withMaxAdmittedRequests(maxAdmitted))
        .withImageCacheBytes(imageCacheBytes)
        .withApiKeys(apiKeys());
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
