package dev.owlery.coordinator.http;

import static dev.owlery.coordinator.http.OpenAiHttpCluster.KEY;
import static dev.owlery.coordinator.http.OpenAiHttpCluster.LIMITED_KEY;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import com.fasterxml.jackson.databind.JsonNode;
import com.google.protobuf.ByteString;
import dev.owlery.client.Completion;
import dev.owlery.cluster.testing.GrpcCleanup;
import dev.owlery.engine.testing.Fixtures;
import dev.owlery.proto.v1.GenerateRequest;
import dev.owlery.proto.v1.Image;
import dev.owlery.proto.v1.PromptTemplate;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * The HTTP API driven by a client no one here wrote: OpenAI's official Node package ({@code openai},
 * pinned to {@link #OPENAI_VERSION}, installed from the npm registry into {@code target/openai-node}
 * once; npm's offline cache is used when it has it). The script {@code openai-node/client-check.mjs}
 * asks for a whole and a streamed chat completion with an image (with logprobs), one with a stop
 * sequence, the models, and calls with a wrong key and over a key's limit; this test holds what it
 * printed to the gRPC answer of the same greedy request. Skipped, saying so, only where Node.js is
 * not installed.
 */
class OpenAiNodeClientTest {

  static final String OPENAI_VERSION = "6.30.1";
  private static final Path INSTALL_DIR = Path.of("target", "openai-node").toAbsolutePath();

  /**
   * The same request on the same cluster, but the shard's kernels sum a row differently in a batched
   * tile than alone (docs/design-notes.md), so the log-softmax of two runs may differ by ~1e-6.
   */
  private static final double LOGPROB_TOLERANCE = 1e-4;

  @RegisterExtension final GrpcCleanup cleanup = new GrpcCleanup();
  @TempDir Path tmp;

  @Test
  void openAisNodeClientGetsGenerateAnswersAndOpenAiErrors() throws Exception {
    Assumptions.assumeTrue(commandExists("node") && commandExists("npm"),
        "Node.js (node and npm) is not installed: OpenAI's Node client cannot be run here");
    Path script = installClient();
    OpenAiHttpCluster cluster = OpenAiHttpCluster.start(cleanup, tmp);
    byte[] image = Files.readAllBytes(Fixtures.tinyOwl2().resolve("test_image.png"));
    Completion grpc = cluster.client.generate(GenerateRequest.newBuilder()
        .setPromptText("USER: <|image|>Describe the image. ASSISTANT:").setTemplate(PromptTemplate.PROMPT_TEMPLATE_NONE)
        .addImages(Image.newBuilder().setData(ByteString.copyFrom(image)))
        .setTemperature(0).setMaxNewTokens(8).setLogprobs(true).setNumTopLogprobs(2).build());

    String printed = run(List.of("node", script.toString()), Map.of("BASE_URL", cluster.baseUrl + "/v1", "KEY", KEY,
        "LIMITED_KEY", LIMITED_KEY, "IMAGE_FILE", Fixtures.tinyOwl2().resolve("test_image.png").toString()), 120);
    JsonNode out = OpenAiHttpCluster.json(printed.lines().reduce((first, last) -> last).orElseThrow());

    JsonNode whole = out.get("whole");
    assertThat(whole.get("object").textValue()).isEqualTo("chat.completion");
    assertThat(whole.get("text").textValue()).isEqualTo(grpc.text());
    assertThat(whole.get("finish").textValue()).isEqualTo("length");
    assertThat(whole.get("logprobs")).hasSize(8);
    for (int i = 0; i < 8; i++) {
      JsonNode token = whole.get("logprobs").get(i);
      assertThat(token.get("logprob").doubleValue()).isCloseTo(grpc.logprobs().get(i).getLogprob(), within(LOGPROB_TOLERANCE));
      assertThat(token.get("token").textValue()).isEqualTo(OpenAiResponses.tokenText(grpc.logprobs().get(i).getToken()));
      assertThat(token.get("top").intValue()).isEqualTo(2);
    }
    assertThat(whole.get("usage").get("prompt_tokens").intValue()).isEqualTo(grpc.usage().getNumPromptTokens());
    assertThat(whole.get("usage").get("completion_tokens").intValue()).isEqualTo(8);

    JsonNode streamed = out.get("streamed");
    assertThat(streamed.get("text").textValue()).isEqualTo(grpc.text());
    assertThat(streamed.get("finish").textValue()).isEqualTo("length");
    assertThat(streamed.get("usage").get("completion_tokens").intValue()).isEqualTo(8);

    JsonNode stopped = out.get("stopped");
    String stop = stopped.get("stop").textValue();
    assertThat(stopped.get("text").textValue()).isEqualTo(grpc.text().substring(0, grpc.text().indexOf(stop)));
    assertThat(stopped.get("finish").textValue()).isEqualTo("stop");

    assertThat(out.get("models")).singleElement().satisfies(id -> assertThat(id.textValue()).isEqualTo("tiny-owl2"));
    assertThat(out.get("badKey").get("status").intValue()).isEqualTo(401);
    assertThat(out.get("badKey").get("name").textValue()).isEqualTo("AuthenticationError");
    assertThat(out.get("badKey").get("message").textValue()).contains("the API key is not one this coordinator accepts");
    assertThat(out.get("spending").get("status").intValue()).isEqualTo(200);
    assertThat(out.get("overLimit").get("status").intValue()).isEqualTo(429);
    assertThat(out.get("overLimit").get("name").textValue()).isEqualTo("RateLimitError");
    assertThat(out.get("overLimit").get("type").textValue()).isEqualTo("rate_limit_error");
    assertThat(out.get("overLimit").get("message").textValue()).contains("over 4 generated tokens/min");
  }

  /** Installs the pinned package into {@link #INSTALL_DIR} unless it is there, and puts the script beside it. */
  private static Path installClient() throws IOException, InterruptedException {
    Path installed = INSTALL_DIR.resolve("node_modules/openai/package.json");
    if (!Files.exists(installed)
        || !OpenAiHttpCluster.json(Files.readString(installed)).get("version").textValue().equals(OPENAI_VERSION)) {
      Files.createDirectories(INSTALL_DIR);
      run(List.of("npm", "install", "--prefix", INSTALL_DIR.toString(), "--no-audit", "--no-fund", "--prefer-offline",
          "--no-save", "openai@" + OPENAI_VERSION), Map.of(), 300);
    }
    Path script = INSTALL_DIR.resolve("client-check.mjs");
    try (InputStream source = OpenAiNodeClientTest.class.getResourceAsStream("/openai-node/client-check.mjs")) {
      Files.write(script, source.readAllBytes());
    }
    return script;
  }

  private static boolean commandExists(String command) {
    try {
      Process process = new ProcessBuilder(command, "--version").redirectErrorStream(true).start();
      process.getInputStream().readAllBytes();
      return process.waitFor(30, TimeUnit.SECONDS) && process.exitValue() == 0;
    } catch (IOException e) {
      return false;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return false;
    }
  }

  /** Runs {@code command} to its end within {@code timeoutSeconds} and returns its output; fails on a non-zero exit. */
  private static String run(List<String> command, Map<String, String> env, int timeoutSeconds)
      throws IOException, InterruptedException {
    ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true).directory(INSTALL_DIR.toFile());
    builder.environment().putAll(env);
    Process process = builder.start();
    CompletableFuture<String> output = CompletableFuture.supplyAsync(() -> {
      try {
        return new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    });
    if (!process.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
      process.destroyForcibly();
      throw new AssertionError(command + " did not finish within " + timeoutSeconds + " s: " + output.getNow(""));
    }
    String printed = output.join();
    assertThat(process.exitValue()).as("%s printed:%n%s", command, printed).isZero();
    return printed;
  }
}
