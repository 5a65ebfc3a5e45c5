package dev.owlery.loadtest;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/** {@code loadtest compare A.json B.json}: two runs side by side, with a verdict per metric (see {@link RunComparison}). */
@Command(name = "compare", mixinStandardHelpOptions = true,
    description = "Compare two runs (loadtest --output json): each level's metrics in A and B, B/A, and whether B "
        + "is better, worse or the same beyond the noise of the runs.")
public final class Compare implements Callable<Integer> {

  @Spec
  CommandSpec spec;

  @Parameters(arity = "2", paramLabel = "RUN.json", description = "A (the baseline), then B.")
  List<Path> runs;

  @Option(names = "--output", defaultValue = "text", description = "text (a table) or json (default ${DEFAULT-VALUE}).")
  String output;

  @Option(names = "--fail-on-worse", description = "Exit with 1 when a metric of B is worse beyond the noise.")
  boolean failOnWorse;

  @Override
  public Integer call() {
    boolean json = OutputFormat.isJson(output);
    RunComparison comparison = RunComparison.of(runs.get(0), runs.get(1));
    var out = spec.commandLine().getOut();
    out.print(json ? comparison.json() + "\n" : comparison.table());
    out.flush();
    return failOnWorse && comparison.anyWorse() ? 1 : 0;
  }
}
