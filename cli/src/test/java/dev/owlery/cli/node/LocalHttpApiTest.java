package dev.owlery.cli.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.owlery.cli.Owlery;
import dev.owlery.client.OwleryClient;
import dev.owlery.cluster.testing.LoopbackCluster;
import dev.owlery.engine.testing.Fixtures;
import dev.owlery.proto.v1.NodeDevice;
import dev.owlery.proto.v1.NodeRole;
import dev.owlery.proto.v1.NodeStatus;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * {@code owlery local --http-port P}, real processes: its coordinator serves the OpenAI-compatible
 * HTTP API on P (the flag goes to {@code owlery coordinator --http-port}). Its shard workers serve
 * from {@code --devices twin,twin} and its vision worker from {@code --vision-devices twin}: each on
 * the CPU twin of a CUDA device, as the registry shows, answering a text and an image request.
 */
class LocalHttpApiTest {

  @Test
  void theLocalClustersCoordinatorServesTheHttpApiOnTheGivenPort(@TempDir Path tmp) throws Exception {
    int httpPort = LoopbackCluster.freePorts(1).getFirst();
    Path readyFile = tmp.resolve("ready.json");
    List<String> command = LocalCluster.owleryCommand(List.of("-Xmx256m"));
    command.addAll(List.of("local", "--model", Fixtures.tinyOwl2().toString(), "--devices", "twin,twin",
        "--gpu-memory-utilization", "0.5", "--vision-workers", "1", "--vision-devices", "twin", "--node-heap", "256m",
        "--ready-file", readyFile.toString(), "--http-port", String.valueOf(httpPort)));
    Process local = new ProcessBuilder(command).redirectErrorStream(true)
        .redirectOutput(tmp.resolve("owlery.log").toFile()).start();
    try {
      await().atMost(Duration.ofSeconds(120)).until(() -> Files.exists(readyFile) || !local.isAlive());
      assertThat(local.isAlive()).as(output(tmp)).isTrue();
      HttpClient http = HttpClient.newHttpClient();
      HttpResponse<String> completion = http.send(HttpRequest.newBuilder(
          URI.create("http://127.0.0.1:" + httpPort + "/v1/completions")).timeout(Duration.ofSeconds(60))
          .POST(HttpRequest.BodyPublishers.ofString(
              "{\"prompt\": \"Once upon a time\", \"max_tokens\": 4, \"temperature\": 0}")).build(),
          HttpResponse.BodyHandlers.ofString());
      assertThat(completion.statusCode()).as(completion.body()).isEqualTo(200);
      assertThat(completion.body()).contains("\"object\":\"text_completion\"").contains("\"completion_tokens\":4");
      // an image: encoded by the vision worker on its twin device
      HttpResponse<String> chat = http.send(HttpRequest.newBuilder(
          URI.create("http://127.0.0.1:" + httpPort + "/v1/chat/completions")).timeout(Duration.ofSeconds(60))
          .POST(HttpRequest.BodyPublishers.ofString("""
              {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "%s"}},
                {"type": "text", "text": "What is in the picture?"}]}], "max_tokens": 3, "temperature": 0}"""
              .formatted(pngDataUrl()))).build(),
          HttpResponse.BodyHandlers.ofString());
      assertThat(chat.statusCode()).as(chat.body()).isEqualTo(200);
      assertThat(chat.body()).contains("\"object\":\"chat.completion\"").contains("\"completion_tokens\":3");
      String coordinator = new ObjectMapper().readTree(readyFile.toFile()).get("coordinator").asText();
      try (OwleryClient client = OwleryClient.builder().target(coordinator).defaultDeadline(Duration.ofSeconds(30))
          .build()) {
        List<NodeStatus> shards = client.getClusterStatus().getNodesList().stream()
            .filter(node -> node.getRole() == NodeRole.NODE_ROLE_SHARD_WORKER).toList();
        assertThat(shards).hasSize(2).allSatisfy(shard -> {
          assertThat(shard.getDevice().getDevice()).isEqualTo("cuda-twin");
          // a twin's memory is its JVM's heap (--node-heap), of which --gpu-memory-utilization is the shard's
          assertThat(shard.getDevice().getBudgetBytes()).isEqualTo(shard.getDevice().getTotalBytes() / 2);
        });
        NodeStatus vision = client.getClusterStatus().getNodesList().stream()
            .filter(node -> node.getRole() == NodeRole.NODE_ROLE_VISION_WORKER).findFirst().orElseThrow();
        assertThat(vision.getDevice().getDevice()).isEqualTo("cuda-twin");
        assertThat(vision.getDevice().getName()).isEqualTo("cpu kernel twins");
        // its share, as owlery local gives it (--gpu-memory-utilization), which its memory plan kept to
        assertThat(vision.getDevice().getBudgetBytes()).isEqualTo(vision.getDevice().getTotalBytes() / 2);
        NodeDevice device = shards.getFirst().getDevice();
        String shown = String.format(Locale.ROOT, "cuda-twin cpu kernel twins, %.1f of %.1f GiB",
            device.getBudgetBytes() / (double) (1L << 30), device.getTotalBytes() / (double) (1L << 30));
        assertThat(status(coordinator)).contains(" " + shown + " ");
        JsonNode json = new ObjectMapper().readTree(status(coordinator, "--output", "json"));
        JsonNode first = json.get("nodes").findValues("device").stream().filter(d -> !d.isNull()).findFirst()
            .orElseThrow();
        assertThat(first.get("device").asText()).isEqualTo("cuda-twin");
        assertThat(first.get("name").asText()).isEqualTo("cpu kernel twins");
        assertThat(first.get("budget_bytes").asLong()).isEqualTo(device.getBudgetBytes());
      }
    } finally {
      local.destroy();
      local.waitFor(30, TimeUnit.SECONDS);
      local.destroyForcibly();
    }
  }

  /** {@code owlery status --server COORDINATOR ARGS} in this JVM: its output. */
  private static String status(String coordinator, String... args) {
    StringWriter out = new StringWriter();
    CommandLine cli = Owlery.commandLine();
    cli.setOut(new PrintWriter(out, true));
    List<String> all = new ArrayList<>(List.of("status", "--server", coordinator));
    all.addAll(List.of(args));
    assertThat(cli.execute(all.toArray(String[]::new))).isZero();
    return out.toString();
  }

  /** A 64 x 48 PNG with a gradient, as a data URL. */
  private static String pngDataUrl() throws IOException {
    java.awt.image.BufferedImage image = new java.awt.image.BufferedImage(64, 48, java.awt.image.BufferedImage.TYPE_INT_RGB);
    for (int y = 0; y < 48; y++) {
      for (int x = 0; x < 64; x++) {
        image.setRGB(x, y, (x * 4) << 16 | (y * 5) << 8 | 128);
      }
    }
    java.io.ByteArrayOutputStream png = new java.io.ByteArrayOutputStream();
    javax.imageio.ImageIO.write(image, "png", png);
    return "data:image/png;base64," + java.util.Base64.getEncoder().encodeToString(png.toByteArray());
  }

  private static String output(Path dir) throws IOException {
    return Files.readString(dir.resolve("owlery.log"));
  }
}
