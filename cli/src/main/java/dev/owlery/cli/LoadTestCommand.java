package dev.owlery.cli;

import dev.owlery.cli.loadtest.LevelResult;
import dev.owlery.cli.loadtest.LoadGenerator;
import dev.owlery.cli.loadtest.LoadReport;
import dev.owlery.cli.node.LocalCluster;
import dev.owlery.client.OwleryClient;
import dev.owlery.proto.v1.GenerateRequest;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/**
 * {@code owlery loadtest}: serving throughput at several concurrency levels, one after another on
 * the same cluster, either a running one ({@code --server}) or a local one it starts and stops
 * itself ({@code --model}, as {@code owlery local} does).
 */
@Command(name = "loadtest", mixinStandardHelpOptions = true,
    description = "Measure generated tokens/s and latencies at several concurrency levels through the client SDK.")
public final class LoadTestCommand implements Callable<Integer> {

  @Spec
  CommandSpec spec;

  @ArgGroup(exclusive = true, multiplicity = "1")
  Target target;

  static final class Target {
    @Option(names = "--server", description = "HOST:PORT of a running Owlery coordinator.")
    String server;

    @Option(names = "--model", description = "Model directory: start a local cluster of it (as owlery local), measure, "
        + "stop it.")
    Path model;
  }

  @Option(names = "--shards", description = "With --model: shard workers in the group (default 1).")
  Integer shards;

  @Option(names = "--vision-workers", description = "With --model: vision workers (default 0; --image needs one).")
  Integer visionWorkers;

  @Option(names = "--node-heap", defaultValue = "2g", description = "With --model: -Xmx of each node's JVM (default ${DEFAULT-VALUE}).")
  String nodeHeap;

  @Option(names = "--coordinator-arg", paramLabel = "ARG",
      description = "With --model: an option for the coordinator, e.g. --coordinator-arg=--max-num-seqs=32; repeatable.")
  List<String> coordinatorArgs = new ArrayList<>();

  @Option(names = "--node-log", description = "With --model: where the nodes' output goes (default: a new temporary file, named on stderr).")
  Path nodeLog;

  @Option(names = "--ready-timeout", defaultValue = "PT120S", description = "With --model: how long to wait for the cluster (default ${DEFAULT-VALUE}).")
  Duration readyTimeout;

  @Option(names = "--concurrency", split = ",", defaultValue = "1,4,16", description = "Concurrency levels, run one after "
      + "another (default ${DEFAULT-VALUE}).")
  int[] concurrency;

  @Option(names = "--requests", description = "Requests per level (default: 2 x the level's concurrency, at least 4).")
  Integer requests;

  @Option(names = "--warmup", defaultValue = "2", description = "Requests sent one by one before the first level, not "
      + "measured (default ${DEFAULT-VALUE}).")
  int warmup;

  @ArgGroup(exclusive = true, multiplicity = "1")
  GenerateCommand.PromptSource prompt;

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

  @Override
  public Integer call() throws IOException {
    boolean json = switch (output.toLowerCase(Locale.ROOT)) {
      case "json" -> true;
      case "text" -> false;
      default -> throw new IllegalArgumentException("--output must be text or json, got '%s'".formatted(output));
    };
    checkOptions();
    GenerateRequest request = request();
    if (target.server != null) {
      return measure(target.server, request, json);
    }
    int numShards = shards != null ? shards : 1;
    int numVision = visionWorkers != null ? visionWorkers : 0;
    PrintWriter err = spec.commandLine().getErr();
    Path logFile = nodeLog != null ? nodeLog : Files.createTempFile("owlery-loadtest-nodes-", ".log");
    err.printf("loadtest: starting a local cluster of %s (%d shard worker(s), %d vision worker(s)); node output in %s%n",
        target.model, numShards, numVision, logFile);
    err.flush();
    try (PrintWriter log = new PrintWriter(Files.newBufferedWriter(logFile, StandardCharsets.UTF_8), true);
        LocalCluster cluster = LocalCluster.start(target.model, numShards, numVision, 0, log, List.of("-Xmx" + nodeHeap),
            coordinatorArgs)) {
      Thread stopOnExit = new Thread(cluster::close, "owlery-loadtest-shutdown");
      Runtime.getRuntime().addShutdownHook(stopOnExit);
      try {
        cluster.awaitReady(numVision, readyTimeout);
        return measure(cluster.coordinatorAddress(), request, json);
      } finally {
        Runtime.getRuntime().removeShutdownHook(stopOnExit);
      }
    }
  }

  private void checkOptions() {
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
    if (target.server != null && (shards != null || visionWorkers != null || !coordinatorArgs.isEmpty())) {
      throw new IllegalArgumentException("--shards, --vision-workers and --coordinator-arg set up the local cluster "
          + "of --model; with --server the cluster is already running");
    }
    if (target.model != null && !images.isEmpty() && (visionWorkers == null || visionWorkers < 1)) {
      throw new IllegalArgumentException("--image needs --vision-workers >= 1 with --model (vision workers encode "
          + "the pictures), got " + (visionWorkers == null ? 0 : visionWorkers));
    }
  }

  /** Requests per level: {@code --requests}, else twice the concurrency and at least 4. */
  int requestsPerLevel(int level) {
    return requests != null ? requests : Math.max(4, 2 * level);
  }

  private GenerateRequest request() {
    GenerateRequest.Builder request = RemoteGeneration.promptRequest(prompt, template, "pad",
        GenerateCommand.readImages(images));
    request.setMaxNewTokens(maxNewTokens).setTemperature(temperature);
    if (seed != null) {
      request.setSeed(seed);
    }
    return request.build();
  }

  private int measure(String address, GenerateRequest request, boolean json) {
    PrintWriter err = spec.commandLine().getErr();
    List<LevelResult> levels = new ArrayList<>();
    try (OwleryClient client = OwleryClient.builder().target(address).defaultDeadline(timeout).build()) {
      LoadGenerator generator = new LoadGenerator(client, request, System::nanoTime);
      generator.warmUp(warmup);
      for (int level : concurrency) {
        LevelResult result = generator.runLevel(level, requestsPerLevel(level));
        levels.add(result);
        err.println(String.format(Locale.ROOT, "loadtest: concurrency %d: %d requests, %d errors, %d tokens in %.2f s, "
            + "%.1f tokens/s%s", level, result.numRequests(), result.numErrors(), result.generatedTokens(),
            result.wallSeconds(), result.tokensPerSecond(),
            result.numErrors() > 0 ? "; first error " + result.firstError() : ""));
        err.flush();
      }
    }
    LoadReport report = new LoadReport(address, maxNewTokens, levels);
    PrintWriter out = spec.commandLine().getOut();
    out.print(json ? report.json() + "\n" : report.table());
    out.flush();
    return 0;
  }
}
