package dev.owlery.cli.node;

import static org.assertj.core.api.Assertions.assertThat;

import dev.owlery.cli.Owlery;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/**
 * {@code --parent-pid} of a process that is already gone stops a node before it starts, in one
 * line (a node whose parent dies later is {@link LocalClusterLifetimeTest}'s).
 */
class ParentPidOptionTest {

  @Test
  void aParentThatIsAlreadyGoneIsRefusedBeforeTheNodeStarts() throws Exception {
    Process gone = new ProcessBuilder("true").start();
    assertThat(gone.waitFor(10, TimeUnit.SECONDS)).isTrue();
    StringWriter err = new StringWriter();
    CommandLine cli = Owlery.commandLine();
    cli.setErr(new PrintWriter(err, true));

    int code = cli.execute("shard-worker", "--node-id", "shard-0", "--parent-pid", String.valueOf(gone.pid()));

    assertThat(code).isEqualTo(2);
    assertThat(err.toString()).isEqualTo("owlery: error: --parent-pid %d: no such process%n".formatted(gone.pid()));
  }
}
