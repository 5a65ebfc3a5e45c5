package dev.owlery.loadtest;

import picocli.CommandLine.Option;

/**
 * {@code --api-key KEY}, or the environment variable {@code OWLERY_API_KEY}: the key a command
 * sends to a coordinator started with {@code --api-keys} (as {@code authorization: Bearer KEY}).
 * The environment keeps the key out of the process list and the shell's history. A mixin of the
 * {@code owlery} and {@code loadtest} commands.
 */
public final class ApiKeyOption {

  @Option(names = "--api-key", paramLabel = "KEY", defaultValue = "${env:OWLERY_API_KEY}",
      description = "The API key to send, for a coordinator started with --api-keys; default: the environment "
          + "variable OWLERY_API_KEY (which keeps it out of the process list).")
  String key;

  /** The key, or null when neither the flag nor the environment gives one. */
  public String key() {
    return key;
  }
}
