package dev.owlery.loadtest;

import dev.owlery.client.OwleryException;
import java.io.UncheckedIOException;
import java.time.Duration;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/**
 * The {@code loadtest} command on its own (no server modules on its class path): measures a running
 * coordinator. {@code owlery loadtest} mixes in the same options and can also start a local cluster.
 */
@Command(name = "loadtest", mixinStandardHelpOptions = true, version = "owlery-loadtest 0.1.0", subcommands = Compare.class,
    description = "Measure an Owlery coordinator's throughput and latencies through the client SDK.")
public final class LoadTest implements Callable<Integer> {

  @Spec
  CommandSpec spec;

  // Not required=true: picocli would then ask for it before `loadtest compare` too.
  @Option(names = "--server", description = "HOST:PORT of a running Owlery coordinator, or several of one cluster, comma-separated (required).")
  String server;

  @Mixin
  LoadTestOptions options;

  @Override
  public Integer call() {
    if (server == null) {
      throw new IllegalArgumentException("--server HOST:PORT is required: the coordinator to measure");
    }
    return new LoadTestRunner(options, spec.commandLine().getOut(), spec.commandLine().getErr(),
        LoadTestRunner.stderrIsTerminal()).run(server);
  }

  public static void main(String[] args) {
    System.exit(commandLine().execute(args));
  }

  /** The command line, with bad input and server failures reported in one line each. */
  public static CommandLine commandLine() {
    CommandLine cli = new CommandLine(new LoadTest());
    cli.registerConverter(Duration.class, Durations::option);
    cli.setExecutionExceptionHandler((e, commandLine, parseResult) -> {
      var err = commandLine.getErr();
      switch (e) {
        case IllegalArgumentException bad -> {
          err.println("loadtest: error: " + bad.getMessage());
          err.flush();
          return 2;
        }
        case UncheckedIOException io -> {
          err.println("loadtest: error: " + io.getMessage());
          err.flush();
          return 2;
        }
        case OwleryException server -> {
          err.println("loadtest: the server answered %s: %s".formatted(server.code(), server.description()));
          err.flush();
          return 1;
        }
        default -> throw e;
      }
    });
    return cli;
  }
}
