package dev.owlery.cli;

import dev.owlery.engine.checkpoint.SafetensorsWriter;
import dev.owlery.engine.kernel.KernelsProvider;
import dev.owlery.engine.kv.KvCacheDtype;
import dev.owlery.engine.model.Completion;
import dev.owlery.engine.model.GenerationLimits;
import dev.owlery.engine.model.GenerationRequest;
import dev.owlery.engine.model.ImageInputException;
import dev.owlery.engine.model.InProcessGenerator;
import dev.owlery.engine.model.OwlModel;
import dev.owlery.engine.model.Prompt;
import dev.owlery.engine.sampling.TokenLogprobs;
import dev.owlery.engine.tensor.DType;
import dev.owlery.engine.tensor.WeightFormat;
import dev.owlery.engine.tokenizer.ChatTemplate;
import dev.owlery.engine.vision.preprocess.AspectRatioPolicy;
import dev.owlery.engine.vision.preprocess.ImageFormat;
import dev.owlery.engine.vision.preprocess.ImageRejectedException;
import dev.owlery.loadtest.ApiKeyOption;
import dev.owlery.loadtest.ClientTlsOption;
import dev.owlery.loadtest.OutputFormat;
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

  @Spec
  CommandSpec spec;

  @Option(names = "--model", description = "Model directory (config.json, weights, tokenizer.model); with --server, the "
      + "model to ask for (its name or directory; default: the server's model).")
  String model;

  @Option(names = "--server", description = "HOST:PORT of an Owlery coordinator (or several of one cluster, comma-separated, tried in turn while one is "
      + "unavailable): generate there through the client SDK "
      + "instead of in this process.")
  String server;

  @Option(names = "--logprobs", defaultValue = "0", description = "With --output json, add each generated token's "
      + "log-probability and the N most likely alternatives (natural log of the unmodified distribution).")
  int logprobs;

  @Option(names = "--timeout", defaultValue = "5m", description = "With --server: the request deadline, e.g. 500ms, 30s, "
      + "2m or ISO-8601 PT5S (default ${DEFAULT-VALUE}).")
  java.time.Duration timeout;

  @Mixin
  ApiKeyOption apiKey;

  @Mixin
  ClientTlsOption tls;

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

  @Mixin
  TerminalText terminal;

  @Option(names = "--tensor-parallel", defaultValue = "1", description = "Split the decoder into N in-process slices (default ${DEFAULT-VALUE}).")
  int tensorParallel;

  @Option(names = "--weights", defaultValue = "stored", converter = WeightFormatConverter.class,
      description = "Without --server: the weight matrices mapped (read in place), stored (copied), f16, bf16, q8_0 or q4_0 (converted at load); default ${DEFAULT-VALUE}.")
  WeightFormat weights;

  @Option(names = "--output", defaultValue = "text", description = "text (streamed) or json (default ${DEFAULT-VALUE}).")
  String output;

  @Mixin
  DeviceOptions device;

  @Option(names = "--kv-cache-dtype", paramLabel = "f16|f32", description = "In-process: how the KV cache is stored, "
      + "f16 (default; half the memory per position) or f32 (the engine's arithmetic exactly).")
  String kvCacheDtype;

  @Option(names = "--dump-logits", description = "Write prompt_logits, step_logits and token_ids to this safetensors file.")
  Path dumpLogits;

  @Override
  public Integer call() {
    boolean json = OutputFormat.isJson(output);
    GenerationLimits.checkNumTopLogprobs(logprobs);
    if (dumpLogits != null && server != null) {
      throw new IllegalArgumentException("--dump-logits works in-process only, not with --server");
    }
    if (kvCacheDtype != null && server != null) {
      throw new IllegalArgumentException("--kv-cache-dtype works in-process only; a cluster's is the coordinator's --kv-cache-dtype");
    }
    if (device.given() && server != null) {
      throw new IllegalArgumentException("--device works in-process only; a cluster's shard workers take their own --device");
    }
    KvCacheDtype kvCache = kvCacheDtype == null ? KvCacheDtype.DEFAULT : KvCacheDtype.parse("--kv-cache-dtype", kvCacheDtype);
    List<byte[]> imageBytes = readImages(images);
    PrintWriter out = spec.commandLine().getOut();
    if (server != null) {
      GenerationOutput result = new RemoteGeneration(server, timeout, apiKey.key(), tls).run(this, imageBytes,
          json ? null : delta -> print(out, delta));
      out.println(json ? result.toJson() : "");
      out.flush();
      return 0;
    }
    if (model == null) {
      throw new IllegalArgumentException("--model DIR is required (or --server HOST:PORT)");
    }
    device.requireUsable();
    try (OwlModel owl = OwlModel.load(Path.of(model), tensorParallel, KernelsProvider.shared(weights), weights)) {
      GenerationLimits.checkMaxNewTokens(sampling.maxNewTokens, owl.config().text().maxPositions(), owl.name());
      GenerationRequest request = new GenerationRequest(
          prompt.text != null ? new Prompt.Text(prompt.text) : new Prompt.TokenIds(prompt.ids),
          imageBytes,
          parseTemplate(template),
          parseAspectRatio(aspectRatio),
          sampling.resolve(owl.generationConfig()),
          sampling.maxNewTokens,
          dumpLogits != null || logprobs > 0);
      Completion completion;
      try {
        completion = new InProcessGenerator(owl, kvCache).generate(request, (tokenId, delta) -> {
          if (!json) {
            print(out, delta);
          }
        });
      } catch (ImageInputException e) {
        throw new IllegalArgumentException("cannot decode %s: %s".formatted(images.get(e.imageIndex()), e.reason()), e);
      }
      if (json) {
        out.println(toOutput(completion, owl.config().text().vocabSize(), logprobs).toJson());
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

  private void print(PrintWriter out, String text) {
    out.print(terminal.show(text));
    out.flush();
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

  /** The bytes of each picture, each checked to be a file in a format the decoder reads. */
  static List<byte[]> readImages(List<Path> paths) {
    List<byte[]> images = new ArrayList<>(paths.size());
    for (Path p : paths) {
      if (!Files.exists(p)) {
        throw new IllegalArgumentException("no such file: " + p);
      }
      if (Files.isDirectory(p)) {
        throw new IllegalArgumentException("%s is a directory; give a PNG, JPEG, BMP or GIF file".formatted(p));
      }
      byte[] bytes;
      try {
        bytes = Files.readAllBytes(p);
      } catch (IOException e) {
        throw new IllegalArgumentException("cannot read %s (%s)".formatted(p, e.getClass().getSimpleName()), e);
      }
      try {
        ImageFormat.sniff(bytes);
      } catch (ImageRejectedException e) {
        throw new IllegalArgumentException("cannot decode %s: %s".formatted(p, e.detail()), e);
      }
      images.add(bytes);
    }
    return images;
  }

  static GenerationOutput toOutput(Completion completion, int vocab, int numTopLogprobs) {
    List<TokenLogprobs> perToken = new ArrayList<>();
    if (numTopLogprobs > 0) {
      int[] tokens = completion.tokenIds();
      for (int i = 0; i < tokens.length; i++) {
        perToken.add(TokenLogprobs.of(completion.stepLogits(), i * vocab, vocab, tokens[i], numTopLogprobs));
      }
    }
    return new GenerationOutput(completion.promptTokenIds(), completion.tokenIds(), completion.text(),
        completion.finishReason().apiName(), perToken);
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
