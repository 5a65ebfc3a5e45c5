package dev.owlery.loadtest;

import dev.owlery.client.Images;
import dev.owlery.client.OwleryClient;
import dev.owlery.proto.v1.AspectRatioPolicy;
import dev.owlery.proto.v1.GenerateRequest;
import dev.owlery.proto.v1.Model;
import dev.owlery.proto.v1.NodeState;
import dev.owlery.proto.v1.NodeStatus;
import dev.owlery.proto.v1.PromptTemplate;
import dev.owlery.proto.v1.PromptTokenIds;
import dev.owlery.proto.v1.TokenizeRequest;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * What a load test sends and how it reports, independent of where the coordinator comes from: the
 * options of {@code loadtest} and of {@code owlery loadtest}, which mix them in.
 */
public final class LoadTestOptions {

  @Option(names = "--concurrency", split = ",", description = "Closed loop: concurrency levels, run one after "
      + "another (default 1,4,16 unless --rate is given).")
  int[] concurrency;

  @Option(names = "--rate", split = ",", description = "Open loop: request rates in requests/s, run one after another "
      + "(a sweep; with --slo it stops after the first rate that misses them).")
  double[] rates;

  @Option(names = "--burstiness", defaultValue = "1", description = "With --rate: the gamma shape of the intervals "
      + "between requests; 1 = Poisson arrivals, < 1 burstier, > 1 more regular (default ${DEFAULT-VALUE}).")
  double burstiness;

  @Option(names = "--requests", description = "Requests per level (default: 2 x the concurrency and at least 4, or "
      + "10 s worth of the rate and at least 4; unbounded when only --duration is given).")
  Long requests;

  @Option(names = "--duration", description = "Per level: no request starts after this long, e.g. 30s or 2m.")
  String duration;

  @Option(names = "--warmup", defaultValue = "2", description = "Requests sent one by one before the first level, not "
      + "measured (default ${DEFAULT-VALUE}).")
  int warmup;

  @Option(names = "--slo", description = "Objectives a good request meets, e.g. ttft=500ms,tpot=50ms,e2e=5s: each "
      + "level reports its goodput, and a sweep stops after the first level that misses them.")
  String slo;

  @Option(names = "--slo-attainment", defaultValue = "0.9", description = "The fraction of a level's requests that "
      + "must meet --slo for the level to meet it (default ${DEFAULT-VALUE}).")
  double sloAttainment;

  // Checked by check(), not by picocli: a required group would be asked for before `loadtest compare` too.
  @ArgGroup(exclusive = true, multiplicity = "0..1")
  PromptSource prompt;

  /** What the requests ask. */
  static final class PromptSource {
    @Option(names = "--prompt", description = "Every request: this prompt text; the template is applied to it.")
    String text;

    @Option(names = "--prompt-ids", split = ",", description = "Every request: these prompt token ids, used as given "
        + "(-200 = image placeholder).")
    int[] ids;

    @Option(names = "--dataset", description = "Requests from a file: JSONL (prompt or prompt_ids, images, max_tokens, "
        + "expected_output) or ShareGPT (see --dataset-format), in an order shuffled by --seed.")
    Path dataset;

    @Option(names = "--synthetic", description = "Requests of random token ids, lengths from --input-tokens and "
        + "--output-tokens.")
    boolean synthetic;
  }

  @Option(names = "--dataset-format", defaultValue = "jsonl", description = "jsonl or sharegpt (default ${DEFAULT-VALUE}).")
  String datasetFormat;

  @Option(names = "--input-tokens", defaultValue = "fixed:32", description = "With --synthetic: prompt length, "
      + "fixed:N, uniform:MIN:MAX or normal:MEAN:STDDEV (default ${DEFAULT-VALUE}).")
  String inputTokens;

  @Option(names = "--output-tokens", defaultValue = "fixed:16", description = "With --synthetic: max_new_tokens, "
      + "same forms (default ${DEFAULT-VALUE}).")
  String outputTokens;

  @Option(names = "--template", defaultValue = "mplug_owl2", description = "mplug_owl2 or none, for --prompt (default ${DEFAULT-VALUE}).")
  String template;

  @Option(names = "--image", description = "A picture for the next <|image|> placeholder; repeatable.")
  List<Path> images = new ArrayList<>();

  @Option(names = "--synthetic-images", defaultValue = "0", description = "With --synthetic: pictures made up for "
      + "each request (seeded gradients and noise, PNG), one placeholder each (default ${DEFAULT-VALUE}).")
  int syntheticImages;

  @Option(names = "--image-size", defaultValue = "448x448", description = "With --synthetic-images: WIDTHxHEIGHT "
      + "in pixels (default ${DEFAULT-VALUE}).")
  String imageSize;

  @Option(names = "--distinct-images", description = "With --synthetic-images: pictures no other request of the run "
      + "carries (each misses the coordinator's image cache); by default every request repeats the same ones.")
  boolean distinctImages;

  @Option(names = "--max-new-tokens", defaultValue = "64", description = "Tokens per request at most (default ${DEFAULT-VALUE}).")
  int maxNewTokens;

  @Option(names = "--temperature", defaultValue = "0", description = "0 is greedy (default ${DEFAULT-VALUE}).")
  float temperature;

  @Option(names = "--seed", defaultValue = "0", description = "Seeds the workload: the order of a dataset, synthetic "
      + "prompts, arrival times and each request's sampling seed; the same seed sends the same requests at the same "
      + "times (default ${DEFAULT-VALUE}).")
  long seed;

  @Option(names = "--timeout", defaultValue = "PT5M", description = "Deadline of each request (default ${DEFAULT-VALUE}).")
  Duration timeout;

  @Mixin
  ApiKeyOption apiKey;

  @Mixin
  ClientTlsOption tls;

  @Option(names = "--metrics-url", paramLabel = "URL", description = "A Prometheus /metrics endpoint to scrape "
      + "before, during (every second) and after each level; repeatable (default: every node's, from the cluster "
      + "status).")
  List<String> metricsUrls = new ArrayList<>();

  @Option(names = "--no-server-metrics", description = "Scrape no /metrics: the report has no server-side context.")
  boolean noServerMetrics;

  @Option(names = "--report", paramLabel = "FILE", description = "Also write the run as one self-contained HTML page "
      + "with plots (latency CDFs, TTFT vs load, throughput and KV usage over time) and its parameters.")
  Path report;

  @Spec(Spec.Target.MIXEE)
  CommandSpec command;

  @Option(names = "--output", defaultValue = "text", description = "text (a table) or json (default ${DEFAULT-VALUE}).")
  String output;

  /** Whether stdout gets JSON rather than a table. */
  boolean json() {
    return OutputFormat.isJson(output);
  }

  /** The arguments the command was given, for the report's parameters. */
  List<String> arguments() {
    return command != null && command.commandLine().getParseResult() != null
        ? command.commandLine().getParseResult().originalArgs() : List.of();
  }

  /** Whether the requests carry pictures (the cluster then needs a vision worker). */
  public boolean hasImages() {
    return !images.isEmpty() || syntheticImages > 0;
  }

  /**
   * Checks the options against each other.
   *
   * @throws IllegalArgumentException naming the option, what it must be and what was given
   */
  public void check() {
    if (prompt == null) {
      throw new IllegalArgumentException("give what the requests ask: --prompt, --prompt-ids, --dataset or --synthetic");
    }
    json();
    loads();
    bound(loads().getFirst());
    if (warmup < 0) {
      throw new IllegalArgumentException("--warmup must be >= 0, got " + warmup);
    }
    slo();
    if (!(sloAttainment > 0 && sloAttainment <= 1)) {
      throw new IllegalArgumentException("--slo-attainment must be in (0, 1], got " + sloAttainment);
    }
    if (!prompt.synthetic) {
      if (!inputTokens.equals("fixed:32") || !outputTokens.equals("fixed:16")) {
        throw new IllegalArgumentException("--input-tokens and --output-tokens shape --synthetic requests");
      }
    } else {
      LengthDistribution.parse("--input-tokens", inputTokens);
      LengthDistribution.parse("--output-tokens", outputTokens);
    }
    checkSyntheticImages();
    if (report != null) {
      Path folder = report.toAbsolutePath().getParent();
      if (folder == null || !java.nio.file.Files.isDirectory(folder)) {
        throw new IllegalArgumentException("--report %s: the folder %s does not exist".formatted(report, folder));
      }
    }
    if (noServerMetrics && !metricsUrls.isEmpty()) {
      throw new IllegalArgumentException("give --metrics-url or --no-server-metrics, not both");
    }
    ServerMetrics.checkUrls(metricsUrls);
    if (prompt.dataset != null) {
      isShareGpt();
      if (!images.isEmpty()) {
        throw new IllegalArgumentException("--image is for --prompt, --prompt-ids and --synthetic; dataset entries "
            + "name their own images");
      }
    }
  }

  private void checkSyntheticImages() {
    if (syntheticImages < 0) {
      throw new IllegalArgumentException("--synthetic-images must be >= 0, got " + syntheticImages);
    }
    if (syntheticImages == 0) {
      if (distinctImages || !imageSize.equals("448x448")) {
        throw new IllegalArgumentException("--image-size and --distinct-images shape --synthetic-images, which is 0");
      }
      return;
    }
    if (!prompt.synthetic) {
      throw new IllegalArgumentException("--synthetic-images needs --synthetic (its prompts get one image placeholder "
          + "per picture)");
    }
    if (!images.isEmpty()) {
      throw new IllegalArgumentException("give --image (files) or --synthetic-images (made-up pictures), not both");
    }
    SyntheticImages.parseSize("--image-size", imageSize);
  }

  /** The levels in the order given: --rate's, else --concurrency's (default 1, 4, 16). */
  List<Load> loads() {
    if (rates != null && concurrency != null) {
      throw new IllegalArgumentException("give --concurrency (closed loop) or --rate (open loop), not both");
    }
    List<Load> loads = new ArrayList<>();
    if (rates != null) {
      for (double rate : rates) {
        loads.add(new Load.Rate(rate, burstiness));
      }
    } else {
      for (int level : concurrency != null ? concurrency : new int[] {1, 4, 16}) {
        loads.add(new Load.Concurrency(level));
      }
    }
    return loads;
  }

  /** When {@code load} stops: --requests and --duration, or the default request count. */
  LoadGenerator.Bound bound(Load load) {
    if (requests != null && requests < 1) {
      throw new IllegalArgumentException("--requests must be >= 1, got " + requests);
    }
    java.time.Duration limit = duration != null ? Durations.parse("--duration", duration)
        : LoadGenerator.Bound.UNBOUNDED;
    long count;
    if (requests != null) {
      count = requests;
    } else if (duration != null) {
      count = Long.MAX_VALUE;
    } else {
      count = switch (load) {
        case Load.Concurrency c -> Math.max(4, 2L * c.clients());
        case Load.Rate r -> Math.max(4, (long) Math.ceil(10 * r.perSecond()));
      };
    }
    return new LoadGenerator.Bound(count, limit);
  }

  Slo slo() {
    return slo == null ? Slo.NONE : Slo.parse(slo);
  }

  /** Whether --dataset-format is sharegpt (else jsonl). */
  private boolean isShareGpt() {
    return switch (datasetFormat.toLowerCase(Locale.ROOT)) {
      case "sharegpt" -> true;
      case "jsonl" -> false;
      default -> throw new IllegalArgumentException("--dataset-format must be jsonl or sharegpt, got '%s'"
          .formatted(datasetFormat));
    };
  }

  /**
   * The workload these options describe; asks {@code client} for the model's vocabulary size
   * (synthetic prompts) and for the token count of expected outputs (their max_new_tokens).
   */
  Workload workload(OwleryClient client) {
    if (prompt.dataset != null) {
      List<DatasetEntry> entries = isShareGpt() ? Datasets.readShareGpt(prompt.dataset)
          : Datasets.readJsonl(prompt.dataset);
      int[] maxTokens = new int[entries.size()];
      for (int i = 0; i < maxTokens.length; i++) {
        DatasetEntry entry = entries.get(i);
        maxTokens[i] = entry.maxTokens() > 0 ? entry.maxTokens()
            : entry.expectedOutput() != null ? Math.max(1, numTokens(client, entry.expectedOutput()))
            : maxNewTokens;
      }
      return Workload.dataset(entries, maxTokens, prototype().setTemplate(template(template)).build(), seed);
    }
    if (prompt.synthetic) {
      List<Model> models = client.listModels();
      if (models.isEmpty()) {
        throw new IllegalArgumentException("--synthetic needs the served model's vocabulary size, and the server "
            + "lists no model");
      }
      return Workload.synthetic(LengthDistribution.parse("--input-tokens", inputTokens),
          LengthDistribution.parse("--output-tokens", outputTokens), models.getFirst().getVocabSize(), pictures(),
          prototype().build(), seed);
    }
    return Workload.fixed(request(), seed);
  }

  /** The tokens of {@code text} as an answer: the server's tokenization without the BOS it puts first. */
  private static int numTokens(OwleryClient client, String text) {
    List<Integer> ids = client.tokenize(TokenizeRequest.newBuilder().setText(text)
        .setTemplate(PromptTemplate.PROMPT_TEMPLATE_NONE).build()).getTokenIdsList();
    return !ids.isEmpty() && ids.getFirst() == Workload.BOS_ID ? ids.size() - 1 : ids.size();
  }

  /**
   * The {@code /metrics} URLs to scrape: --metrics-url's, else every node's that is not down, from
   * {@code client}'s cluster status; none with --no-server-metrics.
   */
  List<String> metricsUrls(OwleryClient client) {
    if (noServerMetrics) {
      return List.of();
    }
    if (!metricsUrls.isEmpty()) {
      return metricsUrls;
    }
    return client.getClusterStatus().getNodesList().stream()
        .filter(node -> !node.getMetricsUrl().isEmpty() && node.getState() != NodeState.NODE_STATE_DOWN)
        .map(NodeStatus::getMetricsUrl).toList();
  }

  /** What each synthetic request carries: --synthetic-images' pictures, or --image's files. */
  private Workload.Pictures pictures() {
    if (syntheticImages > 0) {
      int[] size = SyntheticImages.parseSize("--image-size", imageSize);
      return new SyntheticImages(syntheticImages, size[0], size[1],
          distinctImages ? SyntheticImages.Mode.DISTINCT : SyntheticImages.Mode.REPEATED, seed);
    }
    return Workload.Pictures.same(images.stream().map(Images::fromPath).toList());
  }

  /** The fields every request shares: aspect ratio, max_new_tokens and sampling. */
  private GenerateRequest.Builder prototype() {
    return GenerateRequest.newBuilder().setAspectRatioPolicy(AspectRatioPolicy.ASPECT_RATIO_POLICY_PAD)
        .setMaxNewTokens(maxNewTokens).setTemperature(temperature);
  }

  /** The request of --prompt or --prompt-ids. */
  private GenerateRequest request() {
    GenerateRequest.Builder request = prototype();
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
    for (Path image : images) {
      request.addImages(Images.fromPath(image));
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
