package dev.owlery.cli;

import dev.owlery.cli.node.CoordinatorCommand;
import dev.owlery.cli.node.LocalCommand;
import dev.owlery.cli.node.ShardWorkerCommand;
import dev.owlery.cli.node.VisionWorkerCommand;
import dev.owlery.client.OwleryException;
import dev.owlery.loadtest.Durations;
import java.io.PrintWriter;
import java.time.Duration;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code owlery} command: one subcommand per job. */
@Command(
    name = "owlery",
    mixinStandardHelpOptions = true,
    version = "owlery 0.1.0",
    description = "Serves the mPLUG-Owl2 vision-language model.",
    subcommands = {
        DemoCommand.class,
        GenerateCommand.class,
        LocalCommand.class,
        LoadTestCommand.class,
        StatusCommand.class, ModelsCommand.class,
        CoordinatorCommand.class,
        VisionWorkerCommand.class,
        ShardWorkerCommand.class,
        CertsCommand.class,
        BenchCommand.class})
public final class Owlery implements Runnable {

  @CommandLine.Spec
  CommandLine.Model.CommandSpec spec;

  @Override
  public void run() {
    spec.commandLine().usage(spec.commandLine().getOut());
  }

  public static void main(String[] args) {
    System.exit(commandLine().execute(args));
  }

  /**
   * The configured command line, with user errors (bad flags, bad input, bad files) reported in
   * one line; numbers accept {@code nan} and {@code inf} in any case (so that validation, not
   * parsing, answers them) and durations take {@code 500ms}, {@code 5s}, {@code 2m} or ISO-8601.
   */
  public static CommandLine commandLine() {
    CommandLine cli = new CommandLine(new Owlery());
    cli.registerConverter(Float.class, FloatConverter::parse);
    cli.registerConverter(Float.TYPE, FloatConverter::parse);
    cli.registerConverter(Duration.class, Durations::option);
    cli.setParameterExceptionHandler((e, args) -> {
      CommandLine command = e.getCommandLine();
      PrintWriter err = command.getErr();
      err.println("owlery: error: " + e.getMessage());
      err.println("run '%s --help' for the options".formatted(command.getCommandSpec().qualifiedName()));
      err.flush();
      return command.getCommandSpec().exitCodeOnInvalidInput();
    });
    cli.setExecutionExceptionHandler((e, commandLine, parseResult) -> {
      PrintWriter err = commandLine.getErr();
      switch (e) {
        case IllegalArgumentException bad -> {
          err.println("owlery: error: " + bad.getMessage());
          err.flush();
          return 2;
        }
        case java.io.UncheckedIOException io -> {
          err.println("owlery: error: " + io.getMessage());
          err.flush();
          return 2;
        }
        case OwleryException failure -> {
          err.println(failure.reachedServer()
              ? "owlery: the server answered %s: %s".formatted(failure.code(), failure.description())
              : "owlery: error: " + failure.description());
          err.flush();
          return 1;
        }
        default -> throw e;
      }
    });
    return cli;
  }
}
