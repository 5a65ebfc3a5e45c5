package dev.owlery.coordinator.http;

import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.owlery.client.OwleryClient;
import dev.owlery.cluster.testing.GrpcCleanup;
import dev.owlery.coordinator.api.ApiKeys;
import dev.owlery.coordinator.api.KeyLimits;
import dev.owlery.coordinator.scheduler.SchedulerConfig;
import dev.owlery.coordinator.testing.FakeShardWorkerNode;
import dev.owlery.coordinator.testing.LoopbackOwlery;
import dev.owlery.engine.testing.Fixtures;
import dev.owlery.proto.v1.NodeState;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;

/**
 * A tiny-owl2 cluster on loopback (coordinator with its HTTP API, a vision worker, two shard workers
 * running the whole decoder in process) requiring API keys: {@link #KEY} without limits and
 * {@link #LIMITED_KEY} at 4 generated tokens per minute. Also an HTTP client for it.
 */
final class OpenAiHttpCluster {

  static final String KEY = "owl-http-key-aaaaaaaaaaaaaaaaaaaa";
  static final String LIMITED_KEY = "owl-http-key-bbbbbbbbbbbbbbbbbbbb";
  static final ObjectMapper JSON = new ObjectMapper();

  final LoopbackOwlery owlery;
  final OwleryClient client;
  final String baseUrl;
  final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
      .connectTimeout(Duration.ofSeconds(10)).build();

  private OpenAiHttpCluster(LoopbackOwlery owlery, OwleryClient client) {
    this.owlery = owlery;
    this.client = client;
    this.baseUrl = "http://127.0.0.1:" + owlery.coordinator().httpPort();
  }

  static OpenAiHttpCluster start(GrpcCleanup cleanup, Path tmp) throws IOException {
    return start(cleanup, tmp, null);
  }

  /**
   * As {@link #start(GrpcCleanup, Path)}, with the requests of a group that went DOWN waiting
   * {@code reformTimeout} for it to be re-formed (null: the default, 30 s).
   */
  static OpenAiHttpCluster start(GrpcCleanup cleanup, Path tmp, Duration reformTimeout) throws IOException {
    Path keysFile = Files.writeString(tmp.resolve("keys.json"), """
        {"keys": [{"id": "open", "sha256": "%s"}, {"id": "limited", "sha256": "%s", "tokens_per_minute": 4}]}
        """.formatted(sha256(KEY), sha256(LIMITED_KEY)));
    ApiKeys keys = ApiKeys.read(keysFile, KeyLimits.NONE);
    LoopbackOwlery owlery = LoopbackOwlery.start(cleanup, Fixtures.tinyOwl2(), FakeShardWorkerNode.launcher(), 2,
        config -> config.withApiKeys(keys).withHttp(HttpApiConfig.onPort(0))
            // 30 s a step, not 5: the shared test machine's two cores may be busy with other builds.
            .withScheduler(new SchedulerConfig(Duration.ofSeconds(30), config.scheduler().releaseTimeout(), 128,
                reformTimeout == null ? config.scheduler().reformTimeout() : reformTimeout)));
    OwleryClient client = cleanup.register(OwleryClient.builder().target(owlery.coordinator().grpcAddress()).apiKey(KEY)
        .defaultDeadline(Duration.ofSeconds(60)).build());
    await().atMost(Duration.ofSeconds(30)).pollInterval(Duration.ofMillis(50)).until(
        () -> client.getClusterStatus().getGroupsList().stream()
            .anyMatch(group -> group.getState() == NodeState.NODE_STATE_READY));
    return new OpenAiHttpCluster(owlery, client);
  }

  static String imageDataUri() throws IOException {
    return "data:image/png;base64," + Base64.getEncoder().encodeToString(
        Files.readAllBytes(Fixtures.tinyOwl2().resolve("test_image.png")));
  }

  HttpResponse<String> post(String path, String key, String body) throws IOException, InterruptedException {
    HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(baseUrl + path)).timeout(Duration.ofSeconds(60))
        .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body));
    if (key != null) {
      request.header("Authorization", "Bearer " + key);
    }
    return http.send(request.build(), HttpResponse.BodyHandlers.ofString());
  }

  HttpResponse<String> get(String path, String key) throws IOException, InterruptedException {
    HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(baseUrl + path)).timeout(Duration.ofSeconds(60));
    if (key != null) {
      request.header("Authorization", "Bearer " + key);
    }
    return http.send(request.build(), HttpResponse.BodyHandlers.ofString());
  }

  /** The events of a server-sent event stream: each {@code data:} payload, {@code [DONE]} included. */
  static List<String> events(String body) {
    List<String> events = new ArrayList<>();
    for (String block : body.split("\n\n")) {
      if (block.startsWith("data: ")) {
        events.add(block.substring("data: ".length()));
      } else if (!block.isBlank()) {
        throw new AssertionError("not a server-sent event: " + block);
      }
    }
    return events;
  }

  static JsonNode json(String text) throws IOException {
    return JSON.readTree(text);
  }

  static String sha256(String key) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(key.getBytes(StandardCharsets.UTF_8)));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
