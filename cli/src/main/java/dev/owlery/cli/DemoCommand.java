package dev.owlery.cli;

import dev.owlery.cli.demo.DemoModel;
import dev.owlery.cli.demo.DemoPicture;
import dev.owlery.engine.kernel.KernelsProvider;
import dev.owlery.engine.model.Completion;
import dev.owlery.engine.model.GenerationRequest;
import dev.owlery.engine.model.InProcessGenerator;
import dev.owlery.engine.model.OwlModel;
import dev.owlery.engine.model.Prompt;
import dev.owlery.engine.sampling.SamplingParams;
import dev.owlery.engine.tokenizer.ChatTemplate;
import dev.owlery.engine.vision.preprocess.AspectRatioPolicy;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** {@code owlery demo}: the main job — the built-in demo model answers a question about a picture. */
@Command(name = "demo", mixinStandardHelpOptions = true,
    description = "Write the built-in demo model if needed, then ask it about a picture Owlery draws.")
public final class DemoCommand implements Callable<Integer> {

  @Spec
  CommandSpec spec;

  @Option(names = "--model-dir", description = "Where the demo model lives (default: $OWLERY_CACHE/demo-model or ~/.cache/owlery/demo-model).")
  Path modelDir;

  @Option(names = "--question", defaultValue = "What is in this picture?", description = "The question (default: ${DEFAULT-VALUE}).")
  String question;

  @Option(names = "--max-new-tokens", defaultValue = "24", description = "Most tokens to generate (default ${DEFAULT-VALUE}).")
  int maxNewTokens;

  @Option(names = "--tensor-parallel", defaultValue = "2", description = "Decoder slices (default ${DEFAULT-VALUE}).")
  int tensorParallel;

  @Override
  public Integer call() {
    PrintWriter out = spec.commandLine().getOut();
    PrintWriter err = spec.commandLine().getErr();
    Path dir = modelDir != null ? modelDir : DemoModel.defaultDirectory();
    if (!DemoModel.isPresent(dir)) {
      err.printf("owlery demo: writing the demo model (tiny mPLUG-Owl2, seeded random weights) to %s%n", dir);
      err.flush();
    }
    long start = System.nanoTime();
    DemoModel.ensure(dir);
    byte[] picture = DemoPicture.png(160, 120);
    try (OwlModel owl = OwlModel.load(dir, tensorParallel, KernelsProvider.shared())) {
      err.printf("owlery demo: model %s loaded as %d decoder slice(s) in %d ms; its weights are random, so the answer is gibberish%n",
          dir, tensorParallel, (System.nanoTime() - start) / 1_000_000);
      err.printf("owlery demo: picture: a drawn owl on a branch (160x120 PNG)%n");
      out.printf("USER: %s%nASSISTANT: ", question);
      out.flush();
      GenerationRequest request = new GenerationRequest(new Prompt.Text(question), List.of(picture),
          ChatTemplate.MPLUG_OWL2, AspectRatioPolicy.PAD, SamplingParams.greedy(), maxNewTokens, false);
      long generateStart = System.nanoTime();
      Completion completion = new InProcessGenerator(owl).generate(request, (tokenId, delta) -> {
        out.print(delta);
        out.flush();
      });
      double seconds = (System.nanoTime() - generateStart) / 1e9;
      out.println();
      out.flush();
      err.printf(Locale.ROOT, "owlery demo: %d prompt positions (%d image rows), %d tokens generated in %.2f s, finish reason %s%n",
          completion.numPromptRows(), completion.numPromptRows() - completion.promptTokenIds().length + 1,
          completion.tokenIds().length, seconds, completion.finishReason().name().toLowerCase(Locale.ROOT));
      err.flush();
    }
    return 0;
  }
}
