package dev.owlery.coordinator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import dev.owlery.client.Completion;
import dev.owlery.client.OwleryClient;
import dev.owlery.client.OwleryException;
import dev.owlery.cluster.testing.GrpcCleanup;
import dev.owlery.coordinator.api.ApiKeys;
import dev.owlery.coordinator.api.KeyLimits;
import dev.owlery.coordinator.testing.LoopbackOwlery;
import dev.owlery.coordinator.testing.PrometheusScrape;
import dev.owlery.coordinator.testing.ShardWorkerLauncher;
import dev.owlery.engine.testing.Fixtures;
import dev.owlery.proto.v1.GenerateRequest;
import dev.owlery.proto.v1.ListModelsRequest;
import dev.owlery.proto.v1.NodeState;
import dev.owlery.proto.v1.OwleryGrpc;
import dev.owlery.proto.v1.PromptTemplate;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.stub.MetadataUtils;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import java.util.logging.SimpleFormatter;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * A coordinator started with API keys (stories260k, two real shard workers, every key at 2
 * requests/s and 4 generated tokens/min), called over loopback as clients would: without a key or
 * with a wrong one every Owlery method answers UNAUTHENTICATED while the health service stays open;
 * a right key generates; a key over its limits gets RESOURCE_EXHAUSTED naming the limit, while
 * another key is still served; /metrics shows key ids and never a key, nor does any log record.
 */
class ApiKeysClusterTest {

  private static final String KEY_A = "owl-test-key-aaaaaaaaaaaaaaaaaaaa";
  private static final String KEY_B = "owl-test-key-bbbbbbbbbbbbbbbbbbbb";
  private static final String KEY_C = "owl-test-key-cccccccccccccccccccc";

  @RegisterExtension final GrpcCleanup cleanup = new GrpcCleanup();

  private static GenerateRequest story(int maxNewTokens) {
    return GenerateRequest.newBuilder().setPromptText("Once upon a time").setTemplate(PromptTemplate.PROMPT_TEMPLATE_NONE)
        .setTemperature(0).setMaxNewTokens(maxNewTokens).build();
  }

  private OwleryClient client(LoopbackOwlery owlery, String key) {
    return cleanup.register(OwleryClient.builder().target(owlery.coordinator().grpcAddress()).apiKey(key)
        .defaultDeadline(Duration.ofSeconds(60)).build());
  }

  private static void assertRefused(Runnable call, Status.Code code, String description) {
    assertThatThrownBy(call::run).isInstanceOfSatisfying(OwleryException.class, e -> {
      assertThat(e.code()).as(e.getMessage()).isEqualTo(code);
      assertThat(e.description()).matches(description);
    });
  }

  @Test
  void onlyAcceptedKeysAreServedEachWithinItsLimits(@TempDir Path tmp) throws Exception {
    List<String> logged = new CopyOnWriteArrayList<>();
    Handler capture = new Handler() {
      @Override
      public void publish(LogRecord record) {
        logged.add(new SimpleFormatter().format(record));
      }

      @Override
      public void flush() {}

      @Override
      public void close() {}
    };
    // What a coordinator logs in production (INFO and up; the tests' logging.properties shows WARNING).
    Logger root = Logger.getLogger("");
    Level level = root.getLevel();
    root.setLevel(Level.INFO);
    root.addHandler(capture);
    cleanup.onCleanup(() -> {
      root.removeHandler(capture);
      root.setLevel(level);
    });
    Path keysFile = Files.writeString(tmp.resolve("keys.txt"), "# test keys\n" + KEY_A + "\n\n" + KEY_B + "\n" + KEY_C + "\n");
    ApiKeys keys = ApiKeys.read(keysFile, new KeyLimits(2, 4));
    LoopbackOwlery owlery = LoopbackOwlery.start(cleanup, Fixtures.stories260k(), ShardWorkerLauncher.real(), 2,
        config -> config.withApiKeys(keys));
    OwleryClient keyA = client(owlery, KEY_A);
    OwleryClient keyB = client(owlery, KEY_B);
    // Polls within key B's 2 requests/s: refusals while it waits are retried.
    await().atMost(Duration.ofSeconds(30)).pollInterval(Duration.ofMillis(600)).ignoreExceptions()
        .until(() -> keyB.getClusterStatus().getGroupsList().stream()
            .anyMatch(group -> group.getState() == NodeState.NODE_STATE_READY));

    String noKey = "this coordinator requires an API key: send the metadata 'authorization: Bearer KEY' "
        + "\\(owlery --api-key KEY, or OWLERY_API_KEY\\)";
    assertRefused(() -> owlery.client().generate(story(4)), Status.Code.UNAUTHENTICATED, noKey);
    assertRefused(() -> owlery.client().listModels(), Status.Code.UNAUTHENTICATED, noKey);
    assertRefused(() -> owlery.client().getClusterStatus(), Status.Code.UNAUTHENTICATED, noKey);
    OwleryClient wrongKey = client(owlery, KEY_A + "x");
    assertRefused(() -> wrongKey.generate(story(4)), Status.Code.UNAUTHENTICATED,
        "the API key is not one this coordinator accepts");
    ManagedChannel probe = cleanup.register(
        Grpc.newChannelBuilder(owlery.coordinator().grpcAddress(), InsecureChannelCredentials.create()).build());
    assertThat(HealthGrpc.newBlockingStub(probe).check(HealthCheckRequest.getDefaultInstance()).getStatus())
        .as("the health service needs no key").isEqualTo(HealthCheckResponse.ServingStatus.SERVING);
    Metadata lowerCase = new Metadata();
    lowerCase.put(Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER), "bearer " + KEY_C);
    assertThat(OwleryGrpc.newBlockingStub(probe).withInterceptors(MetadataUtils.newAttachHeadersInterceptor(lowerCase))
        .listModels(ListModelsRequest.getDefaultInstance()).getModelsCount()).as("the scheme in any case").isEqualTo(1);

    String idA = keyIdOf(KEY_A);
    Completion first = keyA.generate(story(8));
    assertThat(first.tokenIds()).as("more than key A's 4 tokens/min, all charged").hasSizeGreaterThan(4);
    assertRefused(() -> keyA.generate(story(4)), Status.Code.RESOURCE_EXHAUSTED,
        "key " + idA + ": over 4 generated tokens/min; retry in [0-9]+\\.[0-9] s");
    // Key A's request budget: two a second, so some call of a quick burst is refused.
    OwleryException overRequests = null;
    for (int i = 0; i < 10 && overRequests == null; i++) {
      try {
        keyA.listModels();
      } catch (OwleryException e) {
        overRequests = e;
      }
    }
    assertThat(overRequests).as("a burst of 10 calls within 2 requests/s").isNotNull();
    assertThat(overRequests.code()).isEqualTo(Status.Code.RESOURCE_EXHAUSTED);
    assertThat(overRequests.description()).matches("key " + idA + ": over 2 requests/s; retry in 0\\.[0-9] s");

    assertThat(keyB.generate(story(2)).tokenIds()).as("key B has its own budgets").hasSize(2);

    String metrics = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(owlery.coordinatorMetricsUrl()))
        .build(), HttpResponse.BodyHandlers.ofString()).body();
    assertThat(String.join("\n", logged)).doesNotContain(KEY_A).doesNotContain(KEY_B);
    assertThat(metrics).doesNotContain(KEY_A).doesNotContain(KEY_B).doesNotContain(KEY_A.substring(0, 16));
    PrometheusScrape scrape = PrometheusScrape.of(owlery.coordinatorMetricsUrl());
    assertThat(metrics).contains("key=\"" + idA + "\"").contains("key=\"" + keyIdOf(KEY_B) + "\"");
    assertThat(scrape.value("owlery_generate_requests_total", "outcome", "unauthenticated")).isEqualTo(2.0);
    assertThat(scrape.value("owlery_generate_requests_total", "key", idA)).isEqualTo(2.0);
    assertThat(scrape.value("owlery_admission_rejected_total", "limit", "key_tokens_per_minute")).isEqualTo(1.0);
  }

  private static String keyIdOf(String key) throws Exception {
    byte[] digest = MessageDigest.getInstance("SHA-256").digest(key.getBytes(StandardCharsets.UTF_8));
    return "k-" + HexFormat.of().formatHex(digest, 0, 4);
  }
}
