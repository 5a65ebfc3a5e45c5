package dev.owlery.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.owlery.engine.checkpoint.SafetensorsWriter;
import dev.owlery.engine.kernel.KernelsProvider;
import dev.owlery.engine.model.Completion;
import dev.owlery.engine.model.GenerationRequest;
import dev.owlery.engine.model.InProcessGenerator;
import dev.owlery.engine.model.OwlModel;
import dev.owlery.engine.model.Prompt;
import dev.owlery.engine.tensor.DType;
import dev.owlery.engine.tokenizer.ChatTemplate;
import dev.owlery.engine.vision.preprocess.AspectRatioPolicy;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** {@code owlery generate}: one request through the whole model in this process. */
@Command(name = "generate", mixinStandardHelpOptions = true,
    description = "Generate text from a prompt (and pictures) in this process.")
public final class GenerateCommand implements Callable<Integer> {

  private static final ObjectMapper JSON = new ObjectMapper();

  @Spec
  CommandSpec spec;

  @Option(names = "--model", required = true, description = "Model directory (config.json, weights, tokenizer.model).")
  Path model;

  @ArgGroup(exclusive = true, multiplicity = "1")
  PromptSource prompt;

  static final class PromptSource {
    @Option(names = "--prompt", description = "Prompt text; the template is applied to it.")
    String text;

    @Option(names = "--prompt-ids", split = ",", description = "Prompt token ids, used as given (-200 = image placeholder).")
    int[] ids;
  }

  @Option(names = "--image", description = "A picture (PNG, JPEG, BMP, GIF) for the next <|image|> placeholder; repeatable.")
  List<Path> images = new ArrayList<>();

  @Option(names = "--template", defaultValue = "mplug_owl2", description = "mplug_owl2 or none (default ${DEFAULT-VALUE}).")
  String template;

  @Option(names = "--image-aspect-ratio", defaultValue = "pad", description = "pad, resize or none (default ${DEFAULT-VALUE}).")
  String aspectRatio;

  @Mixin
  SamplingOptions sampling;

  @Option(names = "--tensor-parallel", defaultValue = "1", description = "Split the decoder into N in-process slices (default ${DEFAULT-VALUE}).")
  int tensorParallel;

  @Option(names = "--output", defaultValue = "text", description = "text (streamed) or json (default ${DEFAULT-VALUE}).")
  String output;

  @Option(names = "--dump-logits", description = "Write prompt_logits, step_logits and token_ids to this safetensors file.")
  Path dumpLogits;

  @Override
  public Integer call() {
    boolean json = switch (output.toLowerCase(Locale.ROOT)) {
      case "json" -> true;
      case "text" -> false;
      default -> throw new IllegalArgumentException("--output must be text or json, got '%s'".formatted(output));
    };
    List<byte[]> imageBytes = readImages(images);
    PrintWriter out = spec.commandLine().getOut();
    try (OwlModel owl = OwlModel.load(model, tensorParallel, KernelsProvider.shared())) {
      GenerationRequest request = new GenerationRequest(
          prompt.text != null ? new Prompt.Text(prompt.text) : new Prompt.TokenIds(prompt.ids),
          imageBytes,
          parseTemplate(template),
          parseAspectRatio(aspectRatio),
          sampling.resolve(owl.generationConfig()),
          sampling.maxNewTokens,
          dumpLogits != null);
      Completion completion = new InProcessGenerator(owl).generate(request, (tokenId, delta) -> {
        if (!json) {
          out.print(delta);
          out.flush();
        }
      });
      if (json) {
        out.println(toJson(completion));
      } else {
        out.println();
      }
      out.flush();
      if (dumpLogits != null) {
        writeLogits(dumpLogits, completion, owl.config().text().vocabSize());
      }
    }
    return 0;
  }

  static ChatTemplate parseTemplate(String value) {
    return switch (value.toLowerCase(Locale.ROOT)) {
      case "mplug_owl2" -> ChatTemplate.MPLUG_OWL2;
      case "none" -> ChatTemplate.NONE;
      default -> throw new IllegalArgumentException("--template must be mplug_owl2 or none, got '%s'".formatted(value));
    };
  }

  static AspectRatioPolicy parseAspectRatio(String value) {
    return switch (value.toLowerCase(Locale.ROOT)) {
      case "pad" -> AspectRatioPolicy.PAD;
      case "resize" -> AspectRatioPolicy.RESIZE;
      case "none" -> AspectRatioPolicy.NONE;
      default -> throw new IllegalArgumentException(
          "--image-aspect-ratio must be pad, resize or none, got '%s'".formatted(value));
    };
  }

  static List<byte[]> readImages(List<Path> paths) {
    List<byte[]> bytes = new ArrayList<>(paths.size());
    for (Path p : paths) {
      try {
        bytes.add(Files.readAllBytes(p));
      } catch (IOException e) {
        throw new IllegalArgumentException("cannot read image %s: %s".formatted(p, e.getMessage()), e);
      }
    }
    return bytes;
  }

  static String toJson(Completion completion) {
    ObjectNode root = JSON.createObjectNode();
    Arrays.stream(completion.promptTokenIds()).forEach(root.putArray("prompt_token_ids")::add);
    Arrays.stream(completion.tokenIds()).forEach(root.putArray("token_ids")::add);
    root.put("text", completion.text());
    root.put("finish_reason", completion.finishReason().name().toLowerCase(Locale.ROOT));
    return root.toString();
  }

  static void writeLogits(Path file, Completion completion, int vocab) {
    int generated = completion.tokenIds().length;
    long[] ids = Arrays.stream(completion.tokenIds()).asLongStream().toArray();
    try {
      new SafetensorsWriter()
          .add("prompt_logits", DType.F32, new long[] {completion.numPromptRows(), vocab}, completion.promptLogits())
          .add("step_logits", DType.F32, new long[] {generated, vocab}, completion.stepLogits())
          .add("token_ids", DType.I64, new long[] {generated}, ids)
          .write(file);
    } catch (UncheckedIOException e) {
      throw new IllegalArgumentException("cannot write --dump-logits file " + file + ": " + e.getMessage(), e);
    }
  }
}
