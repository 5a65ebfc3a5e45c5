package dev.owlery.cli.node;

import static org.assertj.core.api.Assertions.assertThat;

import dev.owlery.engine.testing.Fixtures;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The JVM's incubator-module warning and Hazelcast's modular-environment warning reach no one:
 * neither the {@code owlery} launcher's stderr nor the output of a local cluster's nodes.
 */
class JvmWarningsTest {

  private static final String INCUBATOR = "Using incubator modules";
  private static final String HAZELCAST = "Java modular environment";

  @Test
  void theLauncherPrintsOnlyWhatTheCommandSays(@TempDir Path tmp) throws Exception {
    Path launcher = Path.of("..", "owlery").toAbsolutePath().normalize();
    Path out = tmp.resolve("out");
    Path err = tmp.resolve("err");
    ProcessBuilder builder = new ProcessBuilder("bash", launcher.toString(), "generate", "--model",
        Fixtures.stories260k().toString(), "--prompt", "Once", "--template", "none", "--max-new-tokens", "2")
        .redirectOutput(out.toFile()).redirectError(err.toFile());
    // The classes under test, as they are: no build check.
    builder.environment().put("OWLERY_CLASSPATH", System.getProperty("java.class.path"));
    Process process = builder.start();

    assertThat(process.waitFor(60, TimeUnit.SECONDS)).as("the launcher ended").isTrue();
    assertThat(process.exitValue()).as(Files.readString(err)).isZero();
    assertThat(Files.readString(out)).isNotBlank();
    assertThat(Files.readString(err)).doesNotContain(INCUBATOR).doesNotContain(HAZELCAST);
  }

  @Test
  void localClusterNodesPrintNeitherWarning() throws IOException {
    StringWriter log = new StringWriter();
    try (LocalCluster cluster = LocalCluster.start(Fixtures.stories260k(), 1, 0, 0, new PrintWriter(log, true),
        List.of("-Xmx256m"))) {
      cluster.awaitReady(0, Duration.ofSeconds(120));
    }

    assertThat(log.toString()).contains("[coordinator").doesNotContain(INCUBATOR).doesNotContain(HAZELCAST);
  }
}
