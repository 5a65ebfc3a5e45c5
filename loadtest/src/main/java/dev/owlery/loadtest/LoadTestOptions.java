package dev.owlery.loadtest;

import dev.owlery.client.Images;
import dev.owlery.proto.v1.AspectRatioPolicy;
import dev.owlery.proto.v1.GenerateRequest;
import dev.owlery.proto.v1.PromptTemplate;
import dev.owlery.proto.v1.PromptTokenIds;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Option;

/**
 * What a load test sends and how it reports, independent of where the coordinator comes from: the
 * options of {@code loadtest} and of {@code owlery loadtest}, which mix them in.
 */
public final class LoadTestOptions {

  @Option(names = "--concurrency", split = ",", defaultValue = "1,4,16", description = "Concurrency levels, run one after "
      + "another (default ${DEFAULT-VALUE}).")
  int[] concurrency;

  @Option(names = "--requests", description = "Requests per level (default: 2 x the level's concurrency, at least 4).")
  Integer requests;

  @Option(names = "--warmup", defaultValue = "2", description = "Requests sent one by one before the first level, not "
      + "measured (default ${DEFAULT-VALUE}).")
  int warmup;

  @ArgGroup(exclusive = true, multiplicity = "1")
  PromptSource prompt;

  /** The prompt every request carries. */
  static final class PromptSource {
    @Option(names = "--prompt", description = "Prompt text; the template is applied to it.")
    String text;

    @Option(names = "--prompt-ids", split = ",", description = "Prompt token ids, used as given (-200 = image placeholder).")
    int[] ids;
  }

  @Option(names = "--template", defaultValue = "mplug_owl2", description = "mplug_owl2 or none, for --prompt (default ${DEFAULT-VALUE}).")
  String template;

  @Option(names = "--image", description = "A picture for the next <|image|> placeholder; repeatable.")
  List<Path> images = new ArrayList<>();

  @Option(names = "--max-new-tokens", defaultValue = "64", description = "Tokens per request at most (default ${DEFAULT-VALUE}).")
  int maxNewTokens;

  @Option(names = "--temperature", defaultValue = "0", description = "0 is greedy (default ${DEFAULT-VALUE}).")
  float temperature;

  @Option(names = "--seed", description = "Sampling seed of every request (default: the server picks one per request).")
  Long seed;

  @Option(names = "--timeout", defaultValue = "PT5M", description = "Deadline of each request (default ${DEFAULT-VALUE}).")
  Duration timeout;

  @Option(names = "--output", defaultValue = "text", description = "text (a table) or json (default ${DEFAULT-VALUE}).")
  String output;

  /** Whether stdout gets JSON rather than a table. */
  boolean json() {
    return switch (output.toLowerCase(Locale.ROOT)) {
      case "json" -> true;
      case "text" -> false;
      default -> throw new IllegalArgumentException("--output must be text or json, got '%s'".formatted(output));
    };
  }

  /** Whether the requests carry pictures (the cluster then needs a vision worker). */
  public boolean hasImages() {
    return !images.isEmpty();
  }

  /**
   * Checks the options against each other.
   *
   * @throws IllegalArgumentException naming the option, what it must be and what was given
   */
  public void check() {
    json();
    for (int level : concurrency) {
      if (level < 1) {
        throw new IllegalArgumentException("--concurrency levels must be >= 1, got " + level);
      }
    }
    if (requests != null && requests < 1) {
      throw new IllegalArgumentException("--requests must be >= 1, got " + requests);
    }
    if (warmup < 0) {
      throw new IllegalArgumentException("--warmup must be >= 0, got " + warmup);
    }
  }

  /** Requests per level: {@code --requests}, else twice the concurrency and at least 4. */
  int requestsPerLevel(int level) {
    return requests != null ? requests : Math.max(4, 2 * level);
  }

  /** The request every client sends. */
  GenerateRequest request() {
    GenerateRequest.Builder request = GenerateRequest.newBuilder();
    if (prompt.text != null) {
      request.setPromptText(prompt.text).setTemplate(template(template));
    } else {
      // Ids are used as given: the template is for text only, and the server rejects one with ids.
      PromptTokenIds.Builder ids = PromptTokenIds.newBuilder();
      for (int id : prompt.ids) {
        ids.addTokenIds(id);
      }
      request.setPromptTokenIds(ids);
    }
    request.setAspectRatioPolicy(AspectRatioPolicy.ASPECT_RATIO_POLICY_PAD);
    for (Path image : images) {
      request.addImages(Images.fromPath(image));
    }
    request.setMaxNewTokens(maxNewTokens).setTemperature(temperature);
    if (seed != null) {
      request.setSeed(seed);
    }
    return request.build();
  }

  private static PromptTemplate template(String name) {
    return switch (name.toLowerCase(Locale.ROOT)) {
      case "mplug_owl2" -> PromptTemplate.PROMPT_TEMPLATE_MPLUG_OWL2;
      case "none" -> PromptTemplate.PROMPT_TEMPLATE_NONE;
      default -> throw new IllegalArgumentException("--template must be mplug_owl2 or none, got '%s'".formatted(name));
    };
  }
}
