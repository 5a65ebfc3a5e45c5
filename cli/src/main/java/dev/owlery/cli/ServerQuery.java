package dev.owlery.cli;

import dev.owlery.client.OwleryClient;
import dev.owlery.loadtest.ApiKeyOption;
import dev.owlery.loadtest.ClientTlsOption;
import dev.owlery.loadtest.OutputFormat;
import java.time.Duration;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** The options of a command that asks a running coordinator one question: where, how long, in what form. */
final class ServerQuery {

  @Option(names = "--server", required = true, paramLabel = "HOST:PORT[,HOST:PORT...]",
      description = "The Owlery coordinator to ask; several (of one cluster) are tried in turn while one is unavailable.")
  String server;

  @Option(names = "--output", defaultValue = "text", description = "text (a table) or json (default ${DEFAULT-VALUE}).")
  String output;

  @Option(names = "--timeout", defaultValue = "PT10S",
      description = "The call's deadline, e.g. 500ms, 10s or PT10S (default ${DEFAULT-VALUE}).")
  Duration timeout;

  @Mixin
  ApiKeyOption apiKey;

  @Mixin
  ClientTlsOption tls;

  /** Whether {@code --output json} was asked for; a value other than text or json is an error. */
  boolean json() {
    return OutputFormat.isJson(output);
  }

  /** A client of {@code --server} (over TLS with the TLS options) whose calls carry {@code --timeout} and the API key; the caller closes it. */
  OwleryClient client() {
    if (timeout.isNegative() || timeout.isZero()) {
      throw new IllegalArgumentException("--timeout must be a positive duration, got " + timeout);
    }
    return tls.applyTo(OwleryClient.builder()).targets(server).apiKey(apiKey.key()).defaultDeadline(timeout).build();
  }
}
