package dev.owlery.deploy;

import dev.owlery.cli.Owlery;
import dev.owlery.cli.node.CoordinatorCommand;
import dev.owlery.cli.node.ShardWorkerCommand;
import dev.owlery.cli.node.VisionWorkerCommand;
import java.util.List;
import java.util.Map;
import picocli.CommandLine;
import picocli.CommandLine.ParseResult;

/** The owlery command line as the launcher builds it, parsing the arguments deploy/ gives a node. */
final class NodeCommands {

  /** The command class each role's arguments must select. */
  static final Map<String, Class<?>> ROLES = Map.of(
      "coordinator", CoordinatorCommand.class,
      "shard-worker", ShardWorkerCommand.class,
      "vision-worker", VisionWorkerCommand.class);

  private NodeCommands() {}

  /**
   * Parses {@code args} with the real command classes; throws picocli's ParameterException (naming
   * the flag) for an unknown flag, a bad value or a missing required one.
   *
   * @return the subcommand's parse result
   */
  static ParseResult parse(List<String> args) {
    ParseResult result = Owlery.commandLine().parseArgs(args.toArray(String[]::new));
    if (!result.hasSubcommand()) {
      throw new IllegalArgumentException("no owlery subcommand in " + args);
    }
    return result.subcommand();
  }

  /** The command object a parse selected (CoordinatorCommand, ...). */
  static Class<?> commandClass(ParseResult result) {
    return result.commandSpec().userObject().getClass();
  }

  /** The value of {@code option} (e.g. "--members") after parsing: the one given, or its default. */
  @SuppressWarnings("unchecked")
  static <T> T option(ParseResult result, String option) {
    CommandLine.Model.OptionSpec spec = result.commandSpec().findOption(option);
    if (spec == null) {
      throw new IllegalArgumentException(result.commandSpec().qualifiedName() + " has no option " + option);
    }
    return (T) spec.getValue();
  }
}
