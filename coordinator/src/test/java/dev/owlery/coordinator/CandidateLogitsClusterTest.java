package dev.owlery.coordinator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import dev.owlery.client.Completion;
import dev.owlery.cluster.testing.GrpcCleanup;
import dev.owlery.coordinator.placement.PlacementConfig;
import dev.owlery.coordinator.testing.LoopbackOwlery;
import dev.owlery.coordinator.testing.PrometheusScrape;
import dev.owlery.coordinator.testing.ShardWorkerLauncher;
import dev.owlery.engine.kernel.ScalarKernels;
import dev.owlery.engine.kv.KvCacheDtype;
import dev.owlery.engine.model.CompletionListener;
import dev.owlery.engine.model.GenerationRequest;
import dev.owlery.engine.model.InProcessGenerator;
import dev.owlery.engine.model.OwlModel;
import dev.owlery.engine.model.Prompt;
import dev.owlery.engine.sampling.SamplingParams;
import dev.owlery.engine.sampling.TokenLogprobs;
import dev.owlery.engine.testing.Fixtures;
import dev.owlery.engine.tokenizer.ChatTemplate;
import dev.owlery.engine.vision.preprocess.AspectRatioPolicy;
import dev.owlery.proto.v1.GenerateRequest;
import dev.owlery.proto.v1.NodeState;
import dev.owlery.proto.v1.PromptTemplate;
import dev.owlery.proto.v1.TokenLogprob;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Greedy and seeded top-k requests are sampled from the ranks' top candidates (the ranks send a
 * few (id, logit) pairs and a log-sum-exp per row instead of their 16,000- or 32,000-logit
 * slices), and get exactly the tokens the single-process generator picks from the whole row, with
 * the chosen and top log-probabilities of the whole row. tiny-owl2 (32,000 tokens) on a coordinator
 * with groups of one and two real shard workers; scalar kernels and float32 KV on both sides, so
 * that one rank's rows are bit-identical to the single process's.
 */
class CandidateLogitsClusterTest {

  private static final String PROMPT = "Once upon a time";
  private static final int MAX_NEW_TOKENS = 12;
  private static final int NUM_TOP_LOGPROBS = 5;
  private static final SamplingParams TOP_K = new SamplingParams(true, 0.8f, 40, 0.9f, 1f, 7L);
  /** The ranks' log-sum-exps cross as float32: about 1e-6 relative of a value near 10. */
  private static final double LOGPROB_TOLERANCE = 1e-5;
  /** One rank's whole slice of one row at TP 2, in bytes. */
  private static final int SLICE_BYTES = 16_000 * Float.BYTES;

  private static Path dir;
  private static dev.owlery.engine.model.Completion greedy;
  private static dev.owlery.engine.model.Completion sampled;

  @RegisterExtension final GrpcCleanup cleanup = new GrpcCleanup();

  @BeforeAll
  static void reference() {
    dir = Fixtures.tinyOwl2();
    try (OwlModel model = OwlModel.load(dir, 1, new ScalarKernels())) {
      greedy = generate(model, SamplingParams.greedy());
      sampled = generate(model, TOP_K);
    }
  }

  @Test
  void oneRankGivesTheWholeRowsTokensAndLogprobs() {
    LoopbackOwlery owlery = start(1);
    Completion greedyAnswer = owlery.client().generate(request().setTemperature(0).setLogprobs(true)
        .setNumTopLogprobs(NUM_TOP_LOGPROBS).build());
    Completion sampledAnswer = owlery.client().generate(topK().build());

    assertThat(greedyAnswer.tokenIds()).containsExactlyElementsOf(ids(greedy));
    assertThat(sampledAnswer.tokenIds()).containsExactlyElementsOf(ids(sampled));
    int vocab = greedy.stepLogits().length / greedy.tokenIds().length;
    for (int t = 0; t < greedyAnswer.tokenIds().size(); t++) {
      TokenLogprobs expected = TokenLogprobs.of(greedy.stepLogits(), t * vocab, vocab, greedy.tokenIds()[t],
          NUM_TOP_LOGPROBS);
      TokenLogprob actual = greedyAnswer.logprobs().get(t);
      assertThat((double) actual.getLogprob()).as("token %d", t).isCloseTo(expected.logprob(), within(LOGPROB_TOLERANCE));
      assertThat(actual.getTopLogprobsList()).extracting(top -> top.getTokenId())
          .containsExactly(Arrays.stream(expected.topTokenIds()).boxed().toArray(Integer[]::new));
      for (int j = 0; j < NUM_TOP_LOGPROBS; j++) {
        assertThat((double) actual.getTopLogprobs(j).getLogprob()).isCloseTo(expected.topLogprobs()[j],
            within(LOGPROB_TOLERANCE));
      }
    }
    assertCandidatesCrossedAndTheShareIsMeasured(owlery, 2 * SLICE_BYTES);
  }

  @Test
  void twoRanksGiveTheWholeRowsTokens() {
    LoopbackOwlery owlery = start(2);
    Completion greedyAnswer = owlery.client().generate(request().setTemperature(0).setLogprobs(true).build());
    Completion sampledAnswer = owlery.client().generate(topK().build());

    assertThat(greedyAnswer.tokenIds()).containsExactlyElementsOf(ids(greedy));
    assertThat(greedyAnswer.logprobs()).hasSize(MAX_NEW_TOKENS);
    assertThat(sampledAnswer.tokenIds()).containsExactlyElementsOf(ids(sampled));
    assertCandidatesCrossedAndTheShareIsMeasured(owlery, SLICE_BYTES);
  }

  /** Every rank's answer to every step was a small fraction of its slice, and each step's share was recorded. */
  private static void assertCandidatesCrossedAndTheShareIsMeasured(LoopbackOwlery owlery, int sliceBytes) {
    PrometheusScrape scrape = PrometheusScrape.of(owlery.coordinatorMetricsUrl());
    double steps = scrape.sum("owlery_step_duration_seconds_count");
    assertThat(steps).isGreaterThanOrEqualTo(2 * MAX_NEW_TOKENS);
    assertThat(scrape.sum("owlery_step_logits_bytes_max")).isPositive().isLessThan(sliceBytes / 50.0);
    assertThat(scrape.sum("owlery_step_coordinator_duration_seconds_count")).isEqualTo(steps);
    assertThat(scrape.sum("owlery_step_coordinator_share_count")).isEqualTo(steps);
    double meanShare = scrape.sum("owlery_step_coordinator_share_sum") / steps;
    assertThat(meanShare).isStrictlyBetween(0.0, 1.0);
  }

  private LoopbackOwlery start(int numShards) {
    LoopbackOwlery owlery = LoopbackOwlery.start(cleanup, dir, ShardWorkerLauncher.realWithScalarKernels(), numShards,
        config -> config.withPlacement(groupsOf(numShards, config.placement().withKvCacheDtype(KvCacheDtype.F32))));
    owlery.awaitGroup("group-0", NodeState.NODE_STATE_READY, Duration.ofSeconds(30));
    return owlery;
  }

  private static PlacementConfig groupsOf(int size, PlacementConfig p) {
    return new PlacementConfig(size, p.shardModelDir(), p.maxNumSequences(), p.blockSizeTokens(), p.maxNumTokens(),
        p.kvCacheTokens(), p.kvCacheBytes(), p.kvCacheDtype(), p.loadTimeout(), p.healthTimeout(), p.quarantine(),
        p.maxGroups());
  }

  private static GenerateRequest.Builder request() {
    return GenerateRequest.newBuilder().setPromptText(PROMPT).setTemplate(PromptTemplate.PROMPT_TEMPLATE_NONE)
        .setMaxNewTokens(MAX_NEW_TOKENS);
  }

  private static GenerateRequest.Builder topK() {
    return request().setTemperature(TOP_K.temperature()).setTopK(TOP_K.topK()).setTopP(TOP_K.topP())
        .setSeed(TOP_K.seed());
  }

  private static dev.owlery.engine.model.Completion generate(OwlModel model, SamplingParams sampling) {
    return new InProcessGenerator(model, KvCacheDtype.F32).generate(new GenerationRequest(new Prompt.Text(PROMPT),
        List.of(), ChatTemplate.NONE, AspectRatioPolicy.PAD, sampling, MAX_NEW_TOKENS, true), CompletionListener.NONE);
  }

  private static List<Integer> ids(dev.owlery.engine.model.Completion completion) {
    return Arrays.stream(completion.tokenIds()).boxed().toList();
  }
}
