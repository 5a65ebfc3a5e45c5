package dev.owlery.coordinator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import com.google.protobuf.ByteString;
import dev.owlery.client.Completion;
import dev.owlery.client.GenerationHandle;
import dev.owlery.client.GenerationListener;
import dev.owlery.client.OwleryException;
import dev.owlery.cluster.testing.GrpcCleanup;
import dev.owlery.coordinator.api.ApiLimits;
import dev.owlery.coordinator.testing.LoopbackOwlery;
import dev.owlery.coordinator.testing.PrometheusScrape;
import dev.owlery.coordinator.testing.ReadmeMetrics;
import dev.owlery.coordinator.testing.ShardWorkerLauncher;
import dev.owlery.engine.testing.Fixtures;
import dev.owlery.proto.v1.GenerateDelta;
import dev.owlery.proto.v1.GenerateRequest;
import dev.owlery.proto.v1.Image;
import dev.owlery.proto.v1.NodeState;
import dev.owlery.proto.v1.PromptTemplate;
import dev.owlery.shard.node.ShardWorkerNode;
import io.grpc.Status;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * The meters of a whole cluster on tiny-owl2 (coordinator, two real shard workers, a vision worker),
 * read from each node's /metrics as a dashboard would: every Generate call is counted once in
 * {@code owlery_generate_requests_total} under the status code its client saw, whichever path ended
 * it; and the README's Metrics table lists exactly the {@code owlery_*} meters the nodes serve.
 *
 * <p>The coordinator serves a copy of tiny-owl2 whose abstractor has 4 learnable queries, while the
 * vision worker serves the original (8): its embeddings have the wrong shape, the one INTERNAL a
 * real cluster produces without a bug in Owlery (a vision worker serving another model).
 */
class CoordinatorMetricsTest {

  private static final String REQUESTS = "owlery_generate_requests_total";
  /** 14 blocks of 16 positions: a prompt and 200 tokens fit, a prompt and 240 do not. */
  private static final long KV_CACHE_TOKENS = 224;

  @RegisterExtension final GrpcCleanup cleanup = new GrpcCleanup();

  private static GenerateRequest text(int maxNewTokens) {
    return GenerateRequest.newBuilder().setPromptText("USER: Hello. ASSISTANT:")
        .setTemplate(PromptTemplate.PROMPT_TEMPLATE_NONE).setTemperature(0).setMaxNewTokens(maxNewTokens).build();
  }

  /** tiny-owl2 with {@code num_learnable_queries} 4 instead of 8; the other files linked. */
  private static Path withFourQueries(Path original, Path dir) throws IOException {
    try (var files = Files.list(original)) {
      for (Path file : files.toList()) {
        if (!file.getFileName().toString().equals("config.json")) {
          Files.createSymbolicLink(dir.resolve(file.getFileName()), file.toAbsolutePath());
        }
      }
    }
    String config = Files.readString(original.resolve("config.json"));
    String changed = config.replace("\"num_learnable_queries\": 8,", "\"num_learnable_queries\": 4,");
    assertThat(changed).isNotEqualTo(config);
    Files.writeString(dir.resolve("config.json"), changed);
    return dir;
  }

  @Test
  void everyOutcomeIsCountedOnceAndTheReadmeListsEveryMeterServed(@TempDir Path tmp) throws Exception {
    Path original = Fixtures.tinyOwl2();
    LoopbackOwlery owlery = LoopbackOwlery.start(cleanup, withFourQueries(original, tmp), original,
        ShardWorkerLauncher.real(), 2,
        config -> config.withLimits(ApiLimits.defaults().withMaxAdmittedRequests(1))
            .withPlacement(config.placement().withKvCache(16, KV_CACHE_TOKENS, 0))
            // the request sent to the DOWN group waits this long for a re-formation before UNAVAILABLE
            .withScheduler(config.scheduler().withReformTimeout(Duration.ofMillis(500))));
    owlery.awaitGroup("group-0", NodeState.NODE_STATE_READY, Duration.ofSeconds(30));
    ByteString image = ByteString.copyFrom(Files.readAllBytes(original.resolve("test_image.png")));

    Map<String, Integer> expected = provokeEveryOutcomeButUnavailable(owlery, image);
    theReadmeListsExactlyTheMetersTheNodesServe(owlery);
    // Last: it takes the group down.
    ((AutoCloseable) owlery.shards().get(1)).close();
    owlery.awaitGroup("group-0", NodeState.NODE_STATE_DOWN, Duration.ofSeconds(10));
    assertCode(() -> owlery.client().generate(text(3)), Status.Code.UNAVAILABLE);
    expected.put("unavailable", 1);

    int sent = expected.values().stream().mapToInt(Integer::intValue).sum();
    await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> {
      PrometheusScrape scrape = PrometheusScrape.of(owlery.coordinatorMetricsUrl());
      for (Map.Entry<String, Integer> outcome : expected.entrySet()) {
        assertThat(scrape.value(REQUESTS, "outcome", outcome.getKey())).as(outcome.getKey())
            .isEqualTo(outcome.getValue().doubleValue());
      }
      assertThat(scrape.sum(REQUESTS)).as("every call once").isEqualTo((double) sent);
    });
  }

  /** Sends one request per outcome (two RESOURCE_EXHAUSTED: admission and KV); returns the counts expected. */
  private static Map<String, Integer> provokeEveryOutcomeButUnavailable(LoopbackOwlery owlery, ByteString image) {
    Map<String, Integer> expected = new LinkedHashMap<>();
    assertThat(owlery.client().generate(text(3)).tokenIds()).hasSize(3);
    expected.put("ok", 1);
    assertCode(() -> owlery.client().generate(text(0)), Status.Code.INVALID_ARGUMENT);
    expected.put("invalid_argument", 1);
    assertCode(() -> owlery.client().generate(text(3).toBuilder().setModel("no-such-model").build()),
        Status.Code.NOT_FOUND);
    expected.put("not_found", 1);

    // One call in flight (maxAdmittedRequests 1): the next is refused at once; then the client cancels the first.
    CompletableFuture<Void> firstToken = new CompletableFuture<>();
    CompletableFuture<OwleryException> cancelled = new CompletableFuture<>();
    GenerationHandle running = owlery.client().generate(text(200), new GenerationListener() {
      @Override
      public void onDelta(GenerateDelta delta) {
        firstToken.complete(null);
      }

      @Override
      public void onFinish(Completion completion) {
        cancelled.completeExceptionally(new AssertionError("finished before the cancel: " + completion));
      }

      @Override
      public void onError(OwleryException error) {
        cancelled.complete(error);
      }
    });
    firstToken.orTimeout(30, TimeUnit.SECONDS).join();
    assertCode(() -> owlery.client().generate(text(3)), Status.Code.RESOURCE_EXHAUSTED);
    assertThat(cancelled).as("the first call still runs").isNotDone();
    running.cancel();
    assertThat(cancelled.orTimeout(30, TimeUnit.SECONDS).join().code()).isEqualTo(Status.Code.CANCELLED);
    expected.put("cancelled", 1);
    awaitNothingAdmitted(owlery);

    // The deadline passes mid-generation.
    assertCode(() -> owlery.client().withDeadline(Duration.ofMillis(100)).generate(text(200)),
        Status.Code.DEADLINE_EXCEEDED);
    expected.put("deadline_exceeded", 1);
    awaitNothingAdmitted(owlery);

    // Alone, it outgrows the KV pool.
    assertCode(() -> owlery.client().generate(text(240)), Status.Code.RESOURCE_EXHAUSTED);
    expected.put("resource_exhausted", 2);

    GenerateRequest withImage = GenerateRequest.newBuilder().setPromptText("USER: <|image|>Describe it. ASSISTANT:")
        .setTemplate(PromptTemplate.PROMPT_TEMPLATE_NONE).addImages(Image.newBuilder().setData(image))
        .setMaxNewTokens(3).build();
    assertThatThrownBy(() -> owlery.client().generate(withImage)).isInstanceOfSatisfying(OwleryException.class, e -> {
      assertThat(e.code()).isEqualTo(Status.Code.INTERNAL);
      assertThat(e.description()).startsWith("vision worker vision-0").endsWith("(is it serving another model?)");
    });
    expected.put("internal", 1);
    awaitNothingAdmitted(owlery);
    assertThat(PrometheusScrape.of(owlery.coordinatorMetricsUrl())
        .value("owlery_admission_rejected_total", "limit", "max_admitted_requests")).isEqualTo(1.0);
    return expected;
  }

  private static void assertCode(Runnable call, Status.Code code) {
    assertThatThrownBy(call::run).isInstanceOfSatisfying(OwleryException.class,
        e -> assertThat(e.code()).as(e.getMessage()).isEqualTo(code));
  }

  /** The admission of an ended call is given back just after its client sees the end. */
  private static void awaitNothingAdmitted(LoopbackOwlery owlery) {
    await().atMost(Duration.ofSeconds(10)).pollInterval(Duration.ofMillis(20)).until(
        () -> PrometheusScrape.of(owlery.coordinatorMetricsUrl()).sum("owlery_requests_admitted") == 0);
  }

  private static void theReadmeListsExactlyTheMetersTheNodesServe(LoopbackOwlery owlery) throws IOException {
    List<String> urls = new ArrayList<>(List.of(owlery.coordinatorMetricsUrl(),
        "http://127.0.0.1:" + owlery.visionWorker().metricsPort() + "/metrics"));
    owlery.shards().forEach(shard -> urls.add(((ShardWorkerNode) shard).record().metricsUrl()));
    Set<String> served = new TreeSet<>();
    for (String url : urls) {
      PrometheusScrape.of(url).names().stream().filter(name -> name.startsWith("owlery_")).forEach(served::add);
    }
    // Tests run in their module's folder; the README is at the repository root.
    Set<String> listed = ReadmeMetrics.meterNames(Path.of("").toAbsolutePath().getParent().resolve("README.md"));
    assertThat(listed).as("meters in the README's Metrics table").isNotEmpty();

    Set<String> unlisted = new TreeSet<>();
    for (String name : served) {
      if (listed.stream().noneMatch(meter -> ReadmeMetrics.servesAs(meter, name))) {
        unlisted.add(name);
      }
    }
    Set<String> notServed = new TreeSet<>();
    for (String meter : listed) {
      if (served.stream().noneMatch(name -> ReadmeMetrics.servesAs(meter, name))) {
        notServed.add(meter);
      }
    }
    assertThat(unlisted).as("served by the nodes but missing from the README's Metrics table").isEmpty();
    assertThat(notServed).as("in the README's Metrics table but served by no node").isEmpty();
  }
}
