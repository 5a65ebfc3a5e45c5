package dev.owlery.coordinator;

import static org.assertj.core.api.Assertions.assertThat;

import dev.owlery.client.Completion;
import dev.owlery.cluster.testing.GrpcCleanup;
import dev.owlery.coordinator.testing.LoopbackOwlery;
import dev.owlery.coordinator.testing.ShardWorkerLauncher;
import dev.owlery.engine.kernel.KernelsProvider;
import dev.owlery.engine.kv.KvCacheDtype;
import dev.owlery.engine.model.CompletionListener;
import dev.owlery.engine.model.GenerationRequest;
import dev.owlery.engine.model.InProcessGenerator;
import dev.owlery.engine.model.OwlModel;
import dev.owlery.engine.model.Prompt;
import dev.owlery.engine.sampling.SamplingParams;
import dev.owlery.engine.testing.Fixtures;
import dev.owlery.engine.tokenizer.ChatTemplate;
import dev.owlery.engine.vision.preprocess.AspectRatioPolicy;
import dev.owlery.proto.v1.GenerateRequest;
import dev.owlery.proto.v1.NodeState;
import dev.owlery.proto.v1.PromptTemplate;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * min_p, presence_penalty and frequency_penalty reach the sampler through the cluster: a request
 * setting them gets exactly the tokens the single-process generator picks with the same
 * parameters, and (for the penalty) different tokens than without it. stories260k (whose greedy
 * story repeats words, so a presence penalty changes it) on a coordinator and a group of two real
 * shard workers in this JVM.
 */
class ClusterSamplingParamsTest {

  private static final String PROMPT = "Once upon a time";
  private static final int MAX_NEW_TOKENS = 32;
  private static final long SEED = 42;

  @RegisterExtension final GrpcCleanup cleanup = new GrpcCleanup();

  @Test
  void minPAndThePenaltiesGiveTheInProcessTokens() {
    Path dir = Fixtures.stories260k();
    SamplingParams greedy = SamplingParams.greedy();
    SamplingParams presence = greedy.withPenalties(2f, 0f);
    SamplingParams sampled = new SamplingParams(true, 1f, 0, 1f, 0.5f, 1f, 0f, 1.5f, SEED);
    List<Integer> plain;
    List<Integer> penalized;
    List<Integer> minPSampled;
    try (OwlModel model = OwlModel.load(dir, 1, KernelsProvider.shared())) {
      plain = reference(model, greedy);
      penalized = reference(model, presence);
      minPSampled = reference(model, sampled);
    }
    // Otherwise the cluster comparison below would not show the penalty arriving.
    assertThat(penalized).isNotEqualTo(plain);

    // float32 KV on both sides, for exact tokens from two shards and from one process
    LoopbackOwlery owlery = LoopbackOwlery.start(cleanup, dir, ShardWorkerLauncher.real(), 2,
        config -> config.withPlacement(config.placement().withKvCacheDtype(KvCacheDtype.F32)));
    owlery.awaitGroup("group-0", NodeState.NODE_STATE_READY, Duration.ofSeconds(30));

    Completion withPresence = owlery.client().generate(request().setTemperature(0).setPresencePenalty(2f).build());
    Completion withMinPAndFrequency = owlery.client().generate(request().setTemperature(1).setTopK(0)
        .setMinP(0.5f).setFrequencyPenalty(1.5f).setSeed(SEED).build());
    Completion without = owlery.client().generate(request().setTemperature(0).build());

    assertThat(withPresence.tokenIds()).containsExactlyElementsOf(penalized);
    assertThat(withMinPAndFrequency.tokenIds()).containsExactlyElementsOf(minPSampled);
    assertThat(without.tokenIds()).containsExactlyElementsOf(plain);
  }

  private static GenerateRequest.Builder request() {
    return GenerateRequest.newBuilder().setPromptText(PROMPT).setTemplate(PromptTemplate.PROMPT_TEMPLATE_NONE)
        .setMaxNewTokens(MAX_NEW_TOKENS);
  }

  private static List<Integer> reference(OwlModel model, SamplingParams sampling) {
    dev.owlery.engine.model.Completion completion = new InProcessGenerator(model, KvCacheDtype.F32).generate(
        new GenerationRequest(new Prompt.Text(PROMPT), List.of(), ChatTemplate.NONE, AspectRatioPolicy.PAD, sampling,
            MAX_NEW_TOKENS, false),
        CompletionListener.NONE);
    return Arrays.stream(completion.tokenIds()).boxed().toList();
  }
}
