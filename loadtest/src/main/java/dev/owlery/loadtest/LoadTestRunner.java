package dev.owlery.loadtest;

import dev.owlery.client.OwleryClient;
import dev.owlery.proto.v1.GenerateRequest;
import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Runs a load test against one coordinator: the warm-up, then each level in turn, a line per
 * level on {@code err} and the report on {@code out}.
 */
public final class LoadTestRunner {

  private final LoadTestOptions options;
  private final PrintWriter out;
  private final PrintWriter err;

  public LoadTestRunner(LoadTestOptions options, PrintWriter out, PrintWriter err) {
    options.check();
    this.options = options;
    this.out = out;
    this.err = err;
  }

  /** Measures the coordinator at {@code address} (HOST:PORT) and prints the report; returns the exit code. */
  public int run(String address) {
    boolean json = options.json();
    GenerateRequest request = options.request();
    List<LevelResult> levels = new ArrayList<>();
    try (OwleryClient client = OwleryClient.builder().target(address).defaultDeadline(options.timeout).build()) {
      LoadGenerator generator = new LoadGenerator(client, request, System::nanoTime);
      generator.warmUp(options.warmup);
      for (int level : options.concurrency) {
        LevelResult result = generator.runLevel(level, options.requestsPerLevel(level));
        levels.add(result);
        err.println(String.format(Locale.ROOT, "loadtest: concurrency %d: %d requests, %d errors, %d tokens in %.2f s, "
            + "%.1f tokens/s%s", level, result.numRequests(), result.numErrors(), result.generatedTokens(),
            result.wallSeconds(), result.tokensPerSecond(),
            result.numErrors() > 0 ? "; first error " + result.firstError() : ""));
        err.flush();
      }
    }
    LoadReport report = new LoadReport(address, options.maxNewTokens, levels);
    out.print(json ? report.json() + "\n" : report.table());
    out.flush();
    return 0;
  }
}
