package dev.owlery.cli;

import dev.owlery.cli.node.LocalCluster;
import dev.owlery.cli.node.LocalClusterException;
import dev.owlery.loadtest.ChaosPlan;
import dev.owlery.loadtest.Compare;
import dev.owlery.loadtest.Durations;
import dev.owlery.loadtest.Fault;
import dev.owlery.loadtest.LoadTestOptions;
import dev.owlery.loadtest.LoadTestRunner;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.concurrent.Callable;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/**
 * {@code owlery loadtest}: the loadtest module's harness run against a running coordinator
 * ({@code --server}) or a local cluster this command starts and stops itself ({@code --model}, as
 * {@code owlery local} does).
 */
@Command(name = "loadtest", mixinStandardHelpOptions = true, subcommands = Compare.class,
    description = "Measure generated tokens/s and latencies at several concurrency levels through the client SDK.")
public final class LoadTestCommand implements Callable<Integer> {

  private static final String RESTART_COORDINATOR = "restart-coordinator";

  @Spec
  CommandSpec spec;

  // Checked by checkOptions, not by picocli: a required group would be asked for before `loadtest compare` too.
  @ArgGroup(exclusive = true, multiplicity = "0..1")
  Target target;

  static final class Target {
    @Option(names = "--server", description = "HOST:PORT of a running Owlery coordinator, or several of one cluster, comma-separated.")
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

  @Option(names = "--chaos", paramLabel = "KIND@TIME", description = "With --model: a fault at TIME from the first "
      + "level's start: kill-shard@30s (kills a shard worker's process), kill-vision@30s or restart-coordinator@30s "
      + "(kills the coordinator and starts a new one on the same ports); repeatable.")
  List<String> chaos = new ArrayList<>();

  @Option(names = "--stall-threshold", defaultValue = "1s", description = "With --chaos: a request stalled when it "
      + "waited longer than this for a token (default ${DEFAULT-VALUE}).")
  String stallThreshold;

  @Mixin
  LoadTestOptions load;

  @Override
  public Integer call() throws IOException {
    checkOptions();
    LoadTestRunner runner = new LoadTestRunner(load, spec.commandLine().getOut(), spec.commandLine().getErr(),
        LoadTestRunner.stderrIsTerminal());
    if (target.server != null) {
      return runner.run(target.server);
    }
    int numShards = shards != null ? shards : 1;
    int numVision = visionWorkers != null ? visionWorkers : 0;
    PrintWriter err = spec.commandLine().getErr();
    Path logFile = nodeLog != null ? nodeLog : Files.createTempFile("owlery-loadtest-nodes-", ".log");
    err.printf("loadtest: starting a local cluster of %s (%d shard worker(s), %d vision worker(s)); node output in %s%n",
        target.model, numShards, numVision, logFile);
    err.flush();
    // The cluster stops its nodes on close and on the JVM's shutdown (Ctrl-C, SIGTERM).
    try (PrintWriter log = new PrintWriter(Files.newBufferedWriter(logFile, StandardCharsets.UTF_8), true);
        LocalCluster cluster = LocalCluster.start(target.model, numShards, numVision, 0, log, List.of("-Xmx" + nodeHeap),
            coordinatorArgs)) {
      cluster.awaitReady(numVision, readyTimeout);
      return runner.run(cluster.coordinatorAddress(), chaosPlan(cluster, numVision));
    } catch (LocalClusterException e) {
      err.println("owlery loadtest: " + e.getMessage());
      err.flush();
      return 1;
    }
  }

  /** The --chaos faults, injected by killing (and restarting) the cluster's processes. */
  private ChaosPlan chaosPlan(LocalCluster cluster, int numVision) {
    List<Fault> faults = chaos.stream().map(Fault::parse).toList();
    return new ChaosPlan(faults, Durations.parse("--stall-threshold", stallThreshold), fault -> switch (fault.kind()) {
      case RESTART_COORDINATOR -> restartCoordinator(cluster, numVision);
      default -> {
        String role = role(fault);
        LocalCluster.NodeProcess victim = running(cluster, role)
            .orElseThrow(() -> new IllegalStateException("no " + role + " is left running to kill"));
        cluster.kill(victim);
        yield "killed " + victim.nodeId();
      }
    });
  }

  /**
   * Restarts the coordinator and waits until the new one serves (a READY shard group and the
   * vision workers), e.g. "restarted coordinator-1a2b3c4d as coordinator-1a2b3c4d-1, serving again
   * after 6.21 s"; when it does not within --ready-timeout, says why instead.
   */
  private String restartCoordinator(LocalCluster cluster, int numVision) {
    String old = running(cluster, "coordinator").map(LocalCluster.NodeProcess::nodeId)
        .orElseThrow(() -> new IllegalStateException("no coordinator is running to restart"));
    long start = System.nanoTime();
    LocalCluster.NodeProcess started = cluster.restartCoordinator(readyTimeout);
    String restarted = "restarted %s as %s".formatted(old, started.nodeId());
    try {
      cluster.awaitReady(numVision, readyTimeout);
    } catch (LocalClusterException e) {
      return restarted + ", not serving again: " + e.getMessage();
    }
    return restarted + String.format(Locale.ROOT, ", serving again after %.2f s", (System.nanoTime() - start) / 1e9);
  }

  private static Optional<LocalCluster.NodeProcess> running(LocalCluster cluster, String role) {
    return cluster.nodes().stream().filter(node -> node.role().equals(role) && node.process().isAlive()).findFirst();
  }

  /** The role of the node a fault kills. */
  private static String role(Fault fault) {
    return switch (fault.kind()) {
      case "kill-shard" -> "shard-worker";
      case "kill-vision" -> "vision-worker";
      case RESTART_COORDINATOR -> "coordinator";
      default -> throw new IllegalArgumentException(
          "--chaos %s: the kinds are kill-shard, kill-vision and restart-coordinator".formatted(fault));
    };
  }

  /** Checks the options that set up the cluster; the load test's own are checked by its runner. */
  private void checkOptions() {
    if (target == null) {
      throw new IllegalArgumentException("give --server HOST:PORT (a running coordinator) or --model DIR (a local "
          + "cluster this command starts)");
    }
    if (target.server != null && (shards != null || visionWorkers != null || !coordinatorArgs.isEmpty())) {
      throw new IllegalArgumentException("--shards, --vision-workers and --coordinator-arg set up the local cluster "
          + "of --model; with --server the cluster is already running");
    }
    if (!chaos.isEmpty() && target.model == null) {
      throw new IllegalArgumentException("--chaos needs the cluster this command starts (--model): with --server it "
          + "cannot reach the nodes' processes");
    }
    for (String spec : chaos) {
      Fault fault = Fault.parse(spec);
      role(fault);
      if (fault.kind().equals("kill-vision") && (visionWorkers == null || visionWorkers < 1)) {
        throw new IllegalArgumentException("--chaos %s needs --vision-workers >= 1".formatted(spec));
      }
    }
    Durations.parse("--stall-threshold", stallThreshold);
    if (target.model != null && load.hasImages() && (visionWorkers == null || visionWorkers < 1)) {
      throw new IllegalArgumentException("--image needs --vision-workers >= 1 with --model (vision workers encode "
          + "the pictures), got " + (visionWorkers == null ? 0 : visionWorkers));
    }
  }
}
