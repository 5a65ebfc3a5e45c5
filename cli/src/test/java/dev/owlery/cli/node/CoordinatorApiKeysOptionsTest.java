package dev.owlery.cli.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.owlery.engine.testing.Fixtures;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** {@code owlery coordinator --api-keys FILE} and its limits, as far as the coordinator's configuration. */
class CoordinatorApiKeysOptionsTest {

  private static CoordinatorCommand parsed(String... args) {
    CoordinatorCommand command = new CoordinatorCommand();
    String[] withNode = new String[args.length + 2];
    withNode[0] = "--node-id";
    withNode[1] = "coordinator-0";
    System.arraycopy(args, 0, withNode, 2, args.length);
    new CommandLine(command).parseArgs(withNode);
    return command;
  }

  @Test
  void aKeysFileIsReadWithItsLimitsAndABadLineIsNamed(@TempDir Path tmp) throws Exception {
    String model = Fixtures.stories260k().toString();
    Path keys = Files.writeString(tmp.resolve("keys.txt"), "# ops\nowl-key-0123456789abcdef\nowl-key-fedcba9876543210\n");

    assertThat(parsed("--model", model).config().apiKeys().required()).isFalse();
    assertThat(parsed("--model", model, "--api-keys", keys.toString(), "--api-key-requests-per-second", "2",
        "--api-key-tokens-per-minute", "600").config().apiKeys().size()).isEqualTo(2);

    Path bad = Files.writeString(tmp.resolve("bad.txt"), "owl-key-0123456789abcdef\n\ntoo-short\n");
    assertThatThrownBy(() -> parsed("--model", model, "--api-keys", bad.toString()).config())
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage(bad + ":3: a key must have at least 16 characters; this one has 9");
    assertThatThrownBy(() -> parsed("--model", model, "--api-key-tokens-per-minute", "600").config())
        .hasMessage("--api-key-requests-per-second and --api-key-tokens-per-minute limit API keys: give --api-keys "
            + "FILE too");
  }
}
