package dev.owlery.cli.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code owlery shard-worker --device cpu} starts and serves as a shard worker without the flag does. */
class ShardWorkerDeviceTest {

  @Test
  void onTheCpuTheShardWorkerServesAndDrains(@TempDir Path tmp) throws Exception {
    Path launcher = Path.of("..", "owlery").toAbsolutePath().normalize();
    Path err = tmp.resolve("err");
    ProcessBuilder builder = new ProcessBuilder("bash", launcher.toString(), "shard-worker", "--node-id", "shard-cpu",
        "--device", "cpu", "--gpu-memory-utilization", "0.5", "--port", String.valueOf(LoopbackPorts.freePort()),
        "--metrics-port", String.valueOf(LoopbackPorts.freePort()),
        "--cluster-port", String.valueOf(LoopbackPorts.freePort()), "--cluster-name", "device-" + ProcessHandle.current().pid())
        .redirectOutput(tmp.resolve("out").toFile()).redirectError(err.toFile());
    builder.environment().put("OWLERY_CLASSPATH", System.getProperty("java.class.path"));
    Process process = builder.start();
    try {
      await().atMost(Duration.ofSeconds(60)).untilAsserted(
          () -> assertThat(read(err)).contains("owlery shard-worker: shard-cpu serving on 127.0.0.1:"));
      process.destroy();
      assertThat(process.waitFor(30, TimeUnit.SECONDS)).as("drained and exited").isTrue();
      assertThat(process.exitValue()).as(read(err)).isZero();
    } finally {
      process.destroyForcibly();
    }
  }

  private static String read(Path file) {
    try {
      return Files.readString(file);
    } catch (java.io.IOException e) {
      return "";
    }
  }
}
