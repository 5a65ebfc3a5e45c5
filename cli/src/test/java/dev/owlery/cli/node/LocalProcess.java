package dev.owlery.cli.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * {@code owlery local ARGS} as a process of its own (a JVM of 256 MiB), its output in
 * {@code owlery.log} of a test's folder; started, it has written its ready file. Closing it stops
 * the cluster (SIGTERM, then SIGKILL after 30 s).
 */
final class LocalProcess implements AutoCloseable {

  private final Path dir;
  private final Process process;
  private final Path readyFile;

  private LocalProcess(Path dir, Process process, Path readyFile) {
    this.dir = dir;
    this.process = process;
    this.readyFile = readyFile;
  }

  /** Starts {@code owlery local ARGS --ready-file DIR/ready.json} and waits up to 120 s for it to be ready. */
  static LocalProcess start(Path dir, String... args) throws IOException {
    Path readyFile = dir.resolve("ready.json");
    List<String> command = LocalCluster.owleryCommand(List.of("-Xmx256m"));
    command.add("local");
    command.addAll(List.of(args));
    command.addAll(List.of("--ready-file", readyFile.toString()));
    Process process = new ProcessBuilder(command).redirectErrorStream(true)
        .redirectOutput(dir.resolve("owlery.log").toFile()).start();
    LocalProcess local = new LocalProcess(dir, process, readyFile);
    await().atMost(Duration.ofSeconds(120)).until(() -> Files.exists(readyFile) || !process.isAlive());
    assertThat(process.isAlive()).as(local.output()).isTrue();
    return local;
  }

  /** The coordinator's HOST:PORT, from the ready file. */
  String coordinator() throws IOException {
    return new ObjectMapper().readTree(readyFile.toFile()).get("coordinator").asText();
  }

  /** What the command and its nodes printed so far. */
  String output() throws IOException {
    Path log = dir.resolve("owlery.log");
    return Files.exists(log) ? Files.readString(log) : "";
  }

  @Override
  public void close() throws InterruptedException {
    process.destroy();
    if (!process.waitFor(30, TimeUnit.SECONDS)) {
      process.destroyForcibly();
    }
  }
}
