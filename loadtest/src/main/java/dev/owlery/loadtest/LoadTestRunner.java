package dev.owlery.loadtest;

import dev.owlery.client.OwleryClient;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Runs a load test against one coordinator: the warm-up, then each level in turn (with SLOs, up to
 * the first level that misses them), a line per level on {@code err} and the report on
 * {@code out}. On a terminal, {@code err} also gets a live progress line.
 */
public final class LoadTestRunner {

  private final LoadTestOptions options;
  private final PrintWriter out;
  private final PrintWriter err;
  private final boolean terminal;

  /**
   * @param terminal whether {@code err} is a terminal (then it gets the live progress line)
   * @throws IllegalArgumentException when the options do not fit together
   */
  public LoadTestRunner(LoadTestOptions options, PrintWriter out, PrintWriter err, boolean terminal) {
    options.check();
    this.options = options;
    this.out = out;
    this.err = err;
    this.terminal = terminal;
  }

  /** Whether this process's standard error is a terminal, for the progress line. */
  public static boolean stderrIsTerminal() {
    return System.console() != null && System.console().isTerminal();
  }

  /** Measures the coordinator at {@code address} (HOST:PORT) and prints the report; returns the exit code. */
  public int run(String address) {
    return run(address, ChaosPlan.NONE);
  }

  /**
   * Measures the coordinator at {@code address} (HOST:PORT), injecting {@code chaos}'s faults at
   * their times from the first level's start, and prints the report; returns the exit code.
   */
  public int run(String address, ChaosPlan chaos) {
    boolean json = options.json();
    Slo slo = options.slo();
    List<LevelResult> levels = new ArrayList<>();
    LoadReport report;
    FaultSchedule faults = new FaultSchedule(chaos, System::nanoTime);
    try (OwleryClient client = options.tls.applyTo(OwleryClient.builder()).targets(address).apiKey(options.apiKey.key())
            .defaultDeadline(options.timeout).build();
        ServerMetrics metrics = new ServerMetrics(options.metricsUrls(client), System::nanoTime)) {
      LoadGenerator generator = new LoadGenerator(client, options.workload(client), options.seed, System::nanoTime);
      generator.warmUp(options.warmup);
      long firstStart = 0;
      for (Load load : options.loads()) {
        LoadGenerator.Bound bound = options.bound(load);
        ServerMetrics.Recording recording = metrics.start();
        Progress progress = new Progress(err, load.describe(), bound.maxRequests(), System::nanoTime);
        long start = System.nanoTime();
        if (levels.isEmpty()) {
          firstStart = start;
          faults.start(firstStart);
        }
        LevelResult result = generator.runLevel(levels.size() + 1, load, bound, start,
            terminal ? progress::onDone : r -> { });
        result = result.in(start - firstStart, recording.stop(start));
        if (terminal) {
          progress.finish();
        }
        levels.add(result);
        report = new LoadReport(address, options.maxNewTokens, levels, slo, options.sloAttainment, ChaosReport.NONE);
        err.println(summary(result, report));
        err.flush();
        if (!slo.isEmpty() && !report.meetsSlo(result)) {
          break;
        }
      }
    } finally {
      faults.stop();
    }
    report = new LoadReport(address, options.maxNewTokens, levels, slo, options.sloAttainment, faults.report());
    if (!report.chaos().isEmpty()) {
      err.println("loadtest: " + report.chaosLine());
    }
    if (options.report != null) {
      writeReport(options.report, HtmlReport.render(report, options.arguments(), Instant.now()));
      err.println("loadtest: report written to " + options.report);
      err.flush();
    }
    out.print(json ? report.json() + "\n" : report.table());
    out.flush();
    return 0;
  }

  private static void writeReport(Path file, String html) {
    try {
      Files.writeString(file, html, StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write the --report file %s: %s".formatted(file, e.getMessage()), e);
    }
  }

  private static String summary(LevelResult level, LoadReport report) {
    StringBuilder line = new StringBuilder(String.format(Locale.ROOT,
        "loadtest: %s: %d requests, %d errors, %d tokens in %.2f s, %.1f tokens/s", level.load().describe(),
        level.numRequests(), level.numErrors(), level.generatedTokens(), level.wallSeconds(),
        level.tokensPerSecond()));
    if (level.load() instanceof Load.Rate) {
      line.append(String.format(Locale.ROOT, ", achieved %.2f requests/s", level.achievedRequestRate()));
    }
    if (!report.slo().isEmpty()) {
      line.append(String.format(Locale.ROOT, ", %.1f%% meet the SLOs (%s)", 100 * level.attainment(report.slo()),
          report.meetsSlo(level) ? "met" : "missed: the sweep stops here"));
    }
    if (level.numErrors() > 0) {
      line.append("; first error ").append(level.firstError());
    }
    if (level.server().numFailedScrapes() > 0) {
      line.append("; %d /metrics scrape(s) failed, the first %s".formatted(level.server().numFailedScrapes(),
          level.server().firstFailure()));
    }
    return line.toString();
  }
}
