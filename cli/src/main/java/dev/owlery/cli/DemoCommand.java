package dev.owlery.cli;

import com.google.protobuf.ByteString;
import dev.owlery.cli.demo.DemoModel;
import dev.owlery.cli.demo.DemoPicture;
import dev.owlery.cli.node.LocalCluster;
import dev.owlery.cli.node.LocalClusterException;
import dev.owlery.client.FinishReasons;
import dev.owlery.client.GenerationStream;
import dev.owlery.client.OwleryClient;
import dev.owlery.engine.kernel.KernelsProvider;
import dev.owlery.engine.model.Completion;
import dev.owlery.engine.model.GenerationRequest;
import dev.owlery.engine.model.InProcessGenerator;
import dev.owlery.engine.model.OwlModel;
import dev.owlery.engine.model.Prompt;
import dev.owlery.engine.sampling.SamplingParams;
import dev.owlery.engine.tokenizer.ChatTemplate;
import dev.owlery.engine.vision.preprocess.AspectRatioPolicy;
import dev.owlery.proto.v1.GenerateFinish;
import dev.owlery.proto.v1.GenerateRequest;
import dev.owlery.proto.v1.GenerateResponse;
import dev.owlery.proto.v1.Image;
import dev.owlery.proto.v1.PromptTemplate;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/**
 * {@code owlery demo}: the main job — the built-in demo model, served by a local cluster (a
 * coordinator, a vision worker and two shard workers as separate processes), answers a question
 * about a picture Owlery draws.
 */
@Command(name = "demo", mixinStandardHelpOptions = true,
    description = "Write the built-in demo model if needed, start a local cluster and ask it about a picture.")
public final class DemoCommand implements Callable<Integer> {

  private static final int PICTURE_WIDTH = 160;
  private static final int PICTURE_HEIGHT = 120;

  @Spec
  CommandSpec spec;

  @Option(names = "--model-dir", description = "Where the demo model lives (default: $OWLERY_CACHE/demo-model or ~/.cache/owlery/demo-model).")
  Path modelDir;

  @Option(names = "--question", defaultValue = "What is in this picture?", description = "The question (default: ${DEFAULT-VALUE}).")
  String question;

  @Option(names = "--max-new-tokens", defaultValue = "24", description = "Most tokens to generate (default ${DEFAULT-VALUE}).")
  int maxNewTokens;

  @Option(names = "--shards", defaultValue = "2", description = "Shard workers of the local cluster (default ${DEFAULT-VALUE}).")
  int shards;

  @Option(names = "--in-process", description = "Skip the cluster: run the model in this process.")
  boolean inProcess;

  @Mixin
  TerminalText terminal;

  @Override
  public Integer call() {
    PrintWriter out = spec.commandLine().getOut();
    PrintWriter err = spec.commandLine().getErr();
    Path dir = modelDir != null ? modelDir : DemoModel.defaultDirectory();
    if (!DemoModel.isPresent(dir)) {
      err.printf("owlery demo: writing the demo model (tiny mPLUG-Owl2, seeded random weights) to %s%n", dir);
      err.flush();
    }
    DemoModel.ensure(dir);
    err.printf("owlery demo: the demo model's weights are random, so its answer is gibberish; see the README for the real model%n");
    err.printf("owlery demo: picture: a drawn owl on a branch under the moon (%dx%d PNG)%n", PICTURE_WIDTH, PICTURE_HEIGHT);
    err.flush();
    byte[] picture = DemoPicture.png(PICTURE_WIDTH, PICTURE_HEIGHT);
    return inProcess ? answerInProcess(dir, picture, out, err) : answerOnLocalCluster(dir, picture, out, err);
  }

  private int answerOnLocalCluster(Path dir, byte[] picture, PrintWriter out, PrintWriter err) {
    err.printf("owlery demo: starting a local cluster: a coordinator, a vision worker and %d shard workers, "
        + "each its own process (takes a few seconds)...%n", shards);
    err.flush();
    long start = System.nanoTime();
    // The nodes' own output only matters when something goes wrong: keep it to show then.
    StringWriter nodeOutput = new StringWriter();
    try (LocalCluster cluster = LocalCluster.start(dir, shards, 1, 0, new PrintWriter(nodeOutput, true), List.of("-Xmx512m"))) {
      cluster.awaitReady(1, Duration.ofSeconds(180));
      err.printf(Locale.ROOT, "owlery demo: cluster ready in %.1f s; coordinator on %s%n",
          (System.nanoTime() - start) / 1e9, cluster.coordinatorAddress());
      err.flush();
      GenerateRequest request = GenerateRequest.newBuilder()
          .setPromptText(question)
          .setTemplate(PromptTemplate.PROMPT_TEMPLATE_MPLUG_OWL2)
          .addImages(Image.newBuilder().setData(ByteString.copyFrom(picture)))
          .setMaxNewTokens(maxNewTokens)
          .setTemperature(0)
          .build();
      out.printf("USER: %s%nASSISTANT: ", question);
      out.flush();
      GenerateFinish finish = null;
      try (OwleryClient client = OwleryClient.builder().target(cluster.coordinatorAddress())
              .defaultDeadline(Duration.ofMinutes(2)).build();
          GenerationStream stream = client.generateStream(request)) {
        while (stream.hasNext()) {
          GenerateResponse response = stream.next();
          if (response.hasDelta()) {
            out.print(terminal.show(response.getDelta().getText()));
            out.flush();
          } else if (response.hasFinish()) {
            finish = response.getFinish();
          }
        }
      }
      out.println();
      out.flush();
      if (finish != null) {
        err.printf(Locale.ROOT, "owlery demo: %d prompt positions (%d image rows), %d tokens generated, first token after %.0f ms, finish reason %s%n",
            finish.getUsage().getNumPromptTokens(), finish.getUsage().getNumImageTokens(),
            finish.getUsage().getNumCompletionTokens(), finish.getUsage().getTimeToFirstTokenNs() / 1e6,
            FinishReasons.apiName(finish.getFinishReason()));
      }
      err.println("owlery demo: stopping the local cluster");
      err.flush();
    } catch (LocalClusterException e) {
      // The message names the node and carries its last lines.
      err.println("owlery demo: " + e.getMessage());
      err.flush();
      return 1;
    } catch (RuntimeException e) {
      err.println("owlery demo: the local cluster failed; what its nodes printed:");
      err.print(nodeOutput);
      err.flush();
      throw e;
    }
    return 0;
  }

  private int answerInProcess(Path dir, byte[] picture, PrintWriter out, PrintWriter err) {
    try (OwlModel owl = OwlModel.load(dir, shards, KernelsProvider.shared())) {
      out.printf("USER: %s%nASSISTANT: ", question);
      out.flush();
      GenerationRequest request = new GenerationRequest(new Prompt.Text(question), List.of(picture),
          ChatTemplate.MPLUG_OWL2, AspectRatioPolicy.PAD, SamplingParams.greedy(), maxNewTokens, false);
      Completion completion = new InProcessGenerator(owl).generate(request, (tokenId, delta) -> {
        out.print(terminal.show(delta));
        out.flush();
      });
      out.println();
      out.flush();
      err.printf("owlery demo: %d prompt positions (%d image rows), %d tokens generated in-process, finish reason %s%n",
          completion.numPromptRows(), completion.numImageRows(), completion.tokenIds().length,
          completion.finishReason().apiName());
      err.flush();
    }
    return 0;
  }
}
