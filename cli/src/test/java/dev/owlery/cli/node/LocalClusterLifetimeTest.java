package dev.owlery.cli.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.owlery.engine.testing.Fixtures;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The nodes of {@code owlery local} and {@code owlery demo}, real processes, live no longer than
 * the command that started them: killed with SIGKILL (no shutdown hook runs), it leaves nodes that
 * notice and exit by themselves; sent SIGTERM during start-up, it stops every node before it exits.
 */
class LocalClusterLifetimeTest {

  @Test
  void theNodesOfAKilledOwleryLocalExitByThemselves(@TempDir Path tmp) throws Exception {
    Path readyFile = tmp.resolve("ready.json");
    Process local = owlery(tmp, "local", "--model", Fixtures.stories260k().toString(), "--shards", "1",
        "--vision-workers", "0", "--node-heap", "256m", "--ready-file", readyFile.toString());
    List<ProcessHandle> nodes = new ArrayList<>();
    try {
      await().atMost(Duration.ofSeconds(120)).until(() -> Files.exists(readyFile) || !local.isAlive());
      assertThat(local.isAlive()).as(output(tmp)).isTrue();
      nodes.addAll(local.descendants().toList());
      assertThat(nodes).as("a coordinator and a shard worker").hasSize(2);

      local.destroyForcibly();
      assertThat(local.waitFor(10, TimeUnit.SECONDS)).isTrue();

      await().atMost(Duration.ofSeconds(10)).untilAsserted(() ->
          assertThat(nodes).allMatch(LocalClusterLifetimeTest::exited));
    } finally {
      local.destroyForcibly();
      nodes.forEach(ProcessHandle::destroyForcibly);
    }
  }

  @Test
  void sigtermWhileTheDemoStartsStopsEveryNodeBeforeTheDemoExits(@TempDir Path tmp) throws Exception {
    Process demo = owlery(tmp, "demo", "--model-dir", tmp.resolve("demo-model").toString());
    List<ProcessHandle> nodes = new ArrayList<>();
    try {
      await().atMost(Duration.ofSeconds(60)).until(() -> demo.children().findAny().isPresent() || !demo.isAlive());
      nodes.addAll(demo.descendants().toList());
      assertThat(nodes).as(output(tmp)).isNotEmpty();

      demo.destroy();
      assertThat(demo.waitFor(30, TimeUnit.SECONDS)).isTrue();

      // Stopped by the demo's shutdown hook, not later by their own parent watch.
      assertThat(nodes).allMatch(LocalClusterLifetimeTest::exited);
      // Nor a node started after the list was taken.
      assertThat(ProcessHandle.allProcesses().filter(p -> startedBy(p, demo.pid())).filter(p -> !exited(p)))
          .isEmpty();
    } finally {
      demo.destroyForcibly();
      nodes.forEach(ProcessHandle::destroyForcibly);
    }
  }

  /** {@code owlery ARGS} in a JVM of its own, its output in {@code dir/owlery.log}. */
  private static Process owlery(Path dir, String... args) throws IOException {
    List<String> command = LocalCluster.owleryCommand(List.of("-Xmx256m"));
    command.addAll(List.of(args));
    return new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(dir.resolve("owlery.log").toFile()).start();
  }

  private static String output(Path dir) throws IOException {
    return Files.readString(dir.resolve("owlery.log"));
  }

  private static boolean startedBy(ProcessHandle process, long parentPid) {
    List<String> args = List.of(process.info().arguments().orElse(new String[0]));
    int at = args.indexOf("--parent-pid");
    return at >= 0 && at + 1 < args.size() && args.get(at + 1).equals(String.valueOf(parentPid));
  }

  /**
   * Gone, or a zombie: exited but not reaped by the process that inherited it (a container's init
   * may never reap), which {@link ProcessHandle#isAlive()} still counts as alive.
   */
  private static boolean exited(ProcessHandle process) {
    if (!process.isAlive()) {
      return true;
    }
    try {
      String stat = Files.readString(Path.of("/proc", String.valueOf(process.pid()), "stat"));
      return stat.charAt(stat.lastIndexOf(')') + 2) == 'Z';
    } catch (IOException e) {
      return true; // gone since isAlive()
    }
  }
}
