package dev.owlery.coordinator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import dev.owlery.client.Completion;
import dev.owlery.client.GenerationHandle;
import dev.owlery.client.GenerationListener;
import dev.owlery.client.GenerationStream;
import dev.owlery.client.OwleryException;
import dev.owlery.cluster.testing.GrpcCleanup;
import dev.owlery.coordinator.testing.LoopbackOwlery;
import dev.owlery.coordinator.testing.PrometheusScrape;
import dev.owlery.coordinator.testing.ShardWorkerLauncher;
import dev.owlery.engine.testing.Fixtures;
import dev.owlery.proto.v1.FinishReason;
import dev.owlery.proto.v1.GenerateDelta;
import dev.owlery.proto.v1.GenerateRequest;
import dev.owlery.proto.v1.GenerateResponse;
import dev.owlery.proto.v1.NodeState;
import dev.owlery.proto.v1.PromptTemplate;
import dev.owlery.shard.node.ShardWorkerNode;
import io.grpc.Status;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Acceptance of continuous batching on stories260k through a whole cluster (coordinator, two real
 * tensor-parallel shard workers on loopback): concurrent requests share steps and return exactly
 * what each returns alone; a KV pool too small for them all preempts and recomputes without
 * changing a token; after completed, cancelled, deadline-expired and failed requests every node's
 * {@code owlery_kv_blocks_used} is back to 0; stop strings spanning two tokens end the text before
 * them.
 *
 * <p>The shards run the scalar kernels, whose every row is bit-identical whatever else shares its
 * matmul, so "exactly the tokens it returns alone" holds by construction and any scheduling slip
 * (a wrong position, block, row or logits slice) shows. The vector kernels give a batched row the
 * same value within 4.3e-7 relative (engine BatchedForwardTest): the 4-token tiles and the
 * one-token matvec add in different orders, as GPU kernels of different batch sizes do.
 */
class ContinuousBatchingTest {

  private static final Duration AT_MOST = Duration.ofSeconds(60);
  private static final List<String> PROMPTS = List.of("Once upon a time", "The cat", "Lily and Ben", "One day",
      "There was a big dog", "Tom liked to", "The sun was", "A little bird", "Mom said", "The boy ran",
      "In the park", "She had a red ball", "The tree", "Max was sad", "They went to the", "A girl named Sue");

  @RegisterExtension final GrpcCleanup cleanup = new GrpcCleanup();

  private static GenerateRequest request(int i) {
    return GenerateRequest.newBuilder().setPromptText(PROMPTS.get(i % PROMPTS.size()))
        .setTemplate(PromptTemplate.PROMPT_TEMPLATE_NONE).setTemperature(0).setMaxNewTokens(8 + 4 * i).build();
  }

  private LoopbackOwlery cluster(int maxNumSequences, long kvCacheTokens) {
    LoopbackOwlery owlery = LoopbackOwlery.start(cleanup, Fixtures.stories260k(),
        ShardWorkerLauncher.realWithScalarKernels(), 2,
        config -> config.withPlacement(config.placement().withBatch(maxNumSequences, 64)
            .withKvCache(16, kvCacheTokens, 0)));
    owlery.awaitGroup("group-0", NodeState.NODE_STATE_READY, Duration.ofSeconds(30));
    return owlery;
  }

  private static List<Completion> alone(LoopbackOwlery owlery, int count) {
    return IntStream.range(0, count).mapToObj(i -> owlery.client().generate(request(i))).toList();
  }

  private static List<Completion> together(LoopbackOwlery owlery, int count) {
    List<CompletableFuture<Completion>> calls =
        IntStream.range(0, count).mapToObj(i -> owlery.client().generateAsync(request(i))).toList();
    return calls.stream().map(call -> call.orTimeout(AT_MOST.toSeconds(), TimeUnit.SECONDS).join()).toList();
  }

  private static double steps(LoopbackOwlery owlery) {
    return PrometheusScrape.of(owlery.coordinatorMetricsUrl()).sum("owlery_step_duration_seconds_count");
  }

  /** RunSteps answered by each shard, from its own /metrics. */
  private static List<Double> shardSteps(LoopbackOwlery owlery) {
    return owlery.shards().stream().map(shard -> PrometheusScrape.of(((ShardWorkerNode) shard).record().metricsUrl())
        .sum("owlery_shard_step_duration_seconds_count")).toList();
  }

  /** One cluster for acceptance 1 and 6 (a cluster start costs seconds on 2 cores). */
  @Test
  void withTheDefaultPool() {
    LoopbackOwlery owlery = cluster(16, 0);
    sixteenConcurrentRequestsReturnTheirSoloTokensInFarFewerSteps(owlery);
    aStopStringSpanningTwoTokensEndsTheTextBeforeIt(owlery);
  }

  /** One cluster for acceptance 3 and 2: 8 blocks of 16 positions. */
  @Test
  void withAPoolTooSmallForAllSequences() {
    LoopbackOwlery owlery = cluster(16, 128);
    aPoolTooSmallForAllPreemptsAndEveryRequestKeepsItsTokens(owlery);
    afterCompletedCancelledExpiredAndFailedRequestsNoNodeHoldsABlock(owlery);
  }

  private static void sixteenConcurrentRequestsReturnTheirSoloTokensInFarFewerSteps(LoopbackOwlery owlery) {
    List<Completion> solo = alone(owlery, 16);
    double before = steps(owlery);
    List<Double> shardStepsBefore = shardSteps(owlery);

    List<Completion> batched = together(owlery, 16);

    double batchedSteps = steps(owlery) - before;
    // Every step the coordinator counted ran once on each shard, carrying the whole batch (a shard
    // counts a step just after answering it, hence the short wait).
    await().atMost(Duration.ofSeconds(5)).untilAsserted(() -> {
      List<Double> shardStepsAfter = shardSteps(owlery);
      for (int r = 0; r < shardStepsAfter.size(); r++) {
        assertThat(shardStepsAfter.get(r) - shardStepsBefore.get(r)).as("shard %d steps", r).isEqualTo(batchedSteps);
      }
    });
    int sumOfLengths = solo.stream().mapToInt(c -> c.usage().getNumCompletionTokens()).sum();
    for (int i = 0; i < 16; i++) {
      assertThat(batched.get(i).tokenIds()).as("request %d", i).containsExactlyElementsOf(solo.get(i).tokenIds());
      assertThat(batched.get(i).finishReason()).isEqualTo(solo.get(i).finishReason());
    }
    // Alone, each request takes one step per token (its prompt in the first); together they share.
    assertThat(sumOfLengths).isGreaterThan(300);
    assertThat(batchedSteps).isLessThan(sumOfLengths / 3.0);
    System.out.printf("16 concurrent requests: %d tokens in %.0f shared steps%n", sumOfLengths, batchedSteps);
  }

  private static void aPoolTooSmallForAllPreemptsAndEveryRequestKeepsItsTokens(LoopbackOwlery owlery) {
    // 8 blocks of 16 positions: each request alone fits (prompt + at most 36 tokens), 8 together do not.
    List<Completion> solo = alone(owlery, 8);
    double preemptionsBefore = preemptions(owlery);

    List<Completion> batched = together(owlery, 8);

    for (int i = 0; i < 8; i++) {
      assertThat(batched.get(i).tokenIds()).as("request %d", i).containsExactlyElementsOf(solo.get(i).tokenIds());
    }
    assertThat(preemptions(owlery) - preemptionsBefore).isPositive();
    awaitNoBlocksUsed(owlery);
  }

  private static double preemptions(LoopbackOwlery owlery) {
    return PrometheusScrape.of(owlery.coordinatorMetricsUrl()).sum("owlery_scheduler_preemptions_total");
  }

  private static void afterCompletedCancelledExpiredAndFailedRequestsNoNodeHoldsABlock(LoopbackOwlery owlery) {
    List<CompletableFuture<Completion>> completed = List.of(owlery.client().generateAsync(request(2)),
        owlery.client().generateAsync(request(5)));
    // Cancelled by the client at its first token.
    AtomicReference<GenerationHandle> handle = new AtomicReference<>();
    CompletableFuture<OwleryException> cancelled = new CompletableFuture<>();
    handle.set(owlery.client().generate(request(6).toBuilder().setMaxNewTokens(100).build(), new GenerationListener() {
      @Override
      public void onDelta(GenerateDelta delta) {
        while (handle.get() == null) {
          Thread.onSpinWait();
        }
        handle.get().cancel();
      }

      @Override
      public void onFinish(Completion completion) {
        cancelled.completeExceptionally(new AssertionError("finished despite the cancel: " + completion));
      }

      @Override
      public void onError(OwleryException error) {
        cancelled.complete(error);
      }
    }));
    // Its deadline passes mid-generation; needs 200 positions, more than the pool: fails alone.
    CompletableFuture<Completion> expired =
        owlery.client().withDeadline(Duration.ofMillis(150)).generateAsync(request(7).toBuilder().setMaxNewTokens(110)
            .build());
    CompletableFuture<Completion> failed = owlery.client().generateAsync(request(1).toBuilder().setMaxNewTokens(200)
        .build());

    completed.forEach(call -> assertThat(call.orTimeout(60, TimeUnit.SECONDS).join().finishReason())
        .isIn(FinishReason.FINISH_REASON_MAX_NEW_TOKENS, FinishReason.FINISH_REASON_EOS_TOKEN));
    assertThat(cancelled.orTimeout(60, TimeUnit.SECONDS).join().code()).isEqualTo(Status.Code.CANCELLED);
    assertThatThrownBy(() -> expired.orTimeout(60, TimeUnit.SECONDS).join()).cause()
        .isInstanceOfSatisfying(OwleryException.class,
            e -> assertThat(e.code()).isEqualTo(Status.Code.DEADLINE_EXCEEDED));
    assertThatThrownBy(() -> failed.orTimeout(60, TimeUnit.SECONDS).join()).cause()
        .isInstanceOfSatisfying(OwleryException.class, e -> {
          assertThat(e.code()).isEqualTo(Status.Code.RESOURCE_EXHAUSTED);
          assertThat(e.description()).startsWith("the sequence outgrew the KV cache");
        });

    awaitNoBlocksUsed(owlery);
    // The group keeps serving.
    assertThat(owlery.client().generate(request(3)).tokenIds()).isNotEmpty();
  }

  private static void awaitNoBlocksUsed(LoopbackOwlery owlery) {
    List<String> urls = new ArrayList<>();
    urls.add(owlery.coordinatorMetricsUrl());
    owlery.shards().forEach(shard -> urls.add(((ShardWorkerNode) shard).record().metricsUrl()));
    await().atMost(Duration.ofSeconds(10)).pollInterval(Duration.ofMillis(50)).untilAsserted(() -> {
      for (String url : urls) {
        PrometheusScrape scrape = PrometheusScrape.of(url);
        assertThat(scrape.sum("owlery_kv_blocks_used")).as(url).isZero();
        assertThat(scrape.sum("owlery_kv_blocks_free")).as(url).isPositive();
      }
    });
  }

  private static void aStopStringSpanningTwoTokensEndsTheTextBeforeIt(LoopbackOwlery owlery) {
    GenerateRequest request = request(0).toBuilder().setMaxNewTokens(40).build();
    List<String> pieces = streamedTexts(owlery, request);
    String full = String.join("", pieces);
    // The last two characters of one token's text and the first two of the next one's, where that
    // is the first place the four characters appear.
    String stop = null;
    int boundary = 0;
    for (int k = 0; k + 1 < pieces.size() && stop == null; k++) {
      boundary += pieces.get(k).length();
      String candidate = full.substring(Math.max(0, boundary - 2), Math.min(full.length(), boundary + 2));
      if (pieces.get(k).length() >= 2 && pieces.get(k + 1).length() >= 2 && full.indexOf(candidate) == boundary - 2) {
        stop = candidate;
      }
    }
    assertThat(stop).as("a stop string across a token boundary in %s", pieces).isNotNull();
    String expected = full.substring(0, full.indexOf(stop));

    List<String> streamed = streamedTexts(owlery, request.toBuilder().addStopStrings(stop).build());
    Completion stopped = owlery.client().generate(request.toBuilder().addStopStrings(stop).build());

    assertThat(stopped.finishReason()).isEqualTo(FinishReason.FINISH_REASON_STOP_STRING);
    assertThat(stopped.stopString()).isEqualTo(stop);
    assertThat(stopped.text()).isEqualTo(expected).doesNotContain(stop);
    assertThat(String.join("", streamed)).isEqualTo(expected);
  }

  /** The text of every delta of a streamed generation, in order. */
  private static List<String> streamedTexts(LoopbackOwlery owlery, GenerateRequest request) {
    List<String> texts = new ArrayList<>();
    try (GenerationStream stream = owlery.client().generateStream(request)) {
      while (stream.hasNext()) {
        GenerateResponse response = stream.next();
        if (response.hasDelta()) {
          texts.add(response.getDelta().getText());
        }
      }
    }
    return texts;
  }
}
