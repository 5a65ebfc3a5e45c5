package dev.owlery.coordinator.http;

import static dev.owlery.coordinator.http.OpenAiHttpCluster.KEY;
import static dev.owlery.coordinator.http.OpenAiHttpCluster.LIMITED_KEY;
import static dev.owlery.coordinator.http.OpenAiHttpCluster.events;
import static dev.owlery.coordinator.http.OpenAiHttpCluster.json;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.google.protobuf.ByteString;
import dev.owlery.client.Completion;
import dev.owlery.cluster.testing.GrpcCleanup;
import dev.owlery.coordinator.testing.FakeShardWorkerNode;
import dev.owlery.coordinator.testing.PrometheusScrape;
import dev.owlery.engine.testing.Fixtures;
import dev.owlery.proto.v1.GenerateRequest;
import dev.owlery.proto.v1.Image;
import dev.owlery.proto.v1.PromptTemplate;
import dev.owlery.proto.v1.ShardGroupStatus;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * The OpenAI-compatible HTTP API of a real coordinator ({@link OpenAiHttpCluster}: tiny-owl2, a
 * vision worker, two shard workers, API keys), called over loopback: answers equal the gRPC
 * Generate's for the same greedy request, streamed or whole; errors come in OpenAI's shape with
 * their HTTP status; a client that disconnects cancels its sequence; 100 streams at once complete.
 */
class OpenAiHttpApiTest {

  private static final String QUESTION = "Describe the image.";

  /**
   * The same request on the same cluster, but the shard's kernels sum a row differently in a batched
   * tile than alone (docs/design-notes.md), so the log-softmax of two runs may differ by ~1e-6.
   */
  private static final double LOGPROB_TOLERANCE = 1e-4;

  @RegisterExtension final GrpcCleanup cleanup = new GrpcCleanup();
  @TempDir Path tmp;

  private static String chatBody(String image, String extra) {
    return """
        {"model": "tiny-owl2", "messages": [{"role": "user", "content": [
          {"type": "image_url", "image_url": {"url": "%s"}}, {"type": "text", "text": "%s"}]}],
         "temperature": 0, "max_tokens": 8%s}
        """.formatted(image, QUESTION, extra);
  }

  @Test
  void aChatWithAnImageAnswersAsGenerateDoesWholeAndStreamed() throws Exception {
    OpenAiHttpCluster cluster = OpenAiHttpCluster.start(cleanup, tmp);
    String image = OpenAiHttpCluster.imageDataUri();
    Completion grpc = cluster.client.generate(GenerateRequest.newBuilder()
        .setPromptText("USER: <|image|>" + QUESTION + " ASSISTANT:").setTemplate(PromptTemplate.PROMPT_TEMPLATE_NONE)
        .addImages(Image.newBuilder().setData(ByteString.copyFrom(Files.readAllBytes(
            Fixtures.tinyOwl2().resolve("test_image.png")))))
        .setTemperature(0).setMaxNewTokens(8).setLogprobs(true).setNumTopLogprobs(2).build());

    HttpResponse<String> whole = cluster.post("/v1/chat/completions", KEY,
        chatBody(image, ", \"logprobs\": true, \"top_logprobs\": 2, \"return_token_ids\": true"));
    assertThat(whole.statusCode()).as(whole.body()).isEqualTo(200);
    assertThat(whole.headers().firstValue("content-type")).hasValue("application/json");
    JsonNode body = json(whole.body());
    assertThat(body.get("object").textValue()).isEqualTo("chat.completion");
    assertThat(body.get("id").textValue()).startsWith("chatcmpl-");
    assertThat(body.get("model").textValue()).isEqualTo("tiny-owl2");
    JsonNode choice = body.get("choices").get(0);
    assertThat(choice.get("message").get("role").textValue()).isEqualTo("assistant");
    assertThat(choice.get("message").get("content").textValue()).isEqualTo(grpc.text());
    assertThat(ints(choice.get("token_ids"))).isEqualTo(grpc.tokenIds());
    assertThat(choice.get("finish_reason").textValue()).isEqualTo("length");
    JsonNode logprobs = choice.get("logprobs").get("content");
    assertThat(logprobs).hasSize(grpc.logprobs().size());
    for (int i = 0; i < logprobs.size(); i++) {
      assertThat(logprobs.get(i).get("logprob").doubleValue()).isCloseTo(grpc.logprobs().get(i).getLogprob(),
          within(LOGPROB_TOLERANCE));
      assertThat(logprobs.get(i).get("token").textValue())
          .isEqualTo(OpenAiResponses.tokenText(grpc.logprobs().get(i).getToken()));
      assertThat(logprobs.get(i).get("top_logprobs")).hasSize(2);
    }
    assertThat(body.get("usage").get("prompt_tokens").intValue()).isEqualTo(grpc.usage().getNumPromptTokens());
    assertThat(body.get("usage").get("completion_tokens").intValue()).isEqualTo(8);
    assertThat(body.get("usage").get("total_tokens").intValue()).isEqualTo(grpc.usage().getNumPromptTokens() + 8);

    HttpResponse<String> streamed = cluster.post("/v1/chat/completions", KEY,
        chatBody(image, ", \"stream\": true, \"stream_options\": {\"include_usage\": true}, \"return_token_ids\": true"));
    assertThat(streamed.statusCode()).as(streamed.body()).isEqualTo(200);
    assertThat(streamed.headers().firstValue("content-type")).hasValue("text/event-stream; charset=utf-8");
    List<String> events = events(streamed.body());
    assertThat(events.getLast()).isEqualTo("[DONE]");
    List<JsonNode> chunks = new ArrayList<>();
    for (String event : events.subList(0, events.size() - 1)) {
      chunks.add(json(event));
    }
    assertThat(chunks).allSatisfy(chunk -> {
      assertThat(chunk.get("object").textValue()).isEqualTo("chat.completion.chunk");
      assertThat(chunk.get("id").textValue()).isEqualTo(chunks.getFirst().get("id").textValue());
    });
    assertThat(chunks.getFirst().get("choices").get(0).get("delta").get("role").textValue()).isEqualTo("assistant");
    StringBuilder text = new StringBuilder();
    List<Integer> ids = new ArrayList<>();
    for (JsonNode chunk : chunks.subList(1, chunks.size() - 2)) {
      JsonNode delta = chunk.get("choices").get(0);
      text.append(delta.get("delta").get("content").textValue());
      ids.addAll(ints(delta.get("token_ids")));
      assertThat(chunk.get("usage").isNull()).isTrue();
    }
    assertThat(text.toString()).isEqualTo(grpc.text());
    assertThat(ids).isEqualTo(grpc.tokenIds());
    JsonNode finish = chunks.get(chunks.size() - 2);
    assertThat(finish.get("choices").get(0).get("finish_reason").textValue()).isEqualTo("length");
    JsonNode usage = chunks.getLast();
    assertThat(usage.get("choices")).isEmpty();
    assertThat(usage.get("usage").get("completion_tokens").intValue()).isEqualTo(8);

    HttpResponse<String> models = cluster.get("/v1/models", KEY);
    assertThat(models.statusCode()).isEqualTo(200);
    assertThat(json(models.body()).get("data").get(0).get("id").textValue()).isEqualTo("tiny-owl2");
    HttpResponse<String> health = cluster.get("/health", null);
    assertThat(health.statusCode()).as("health needs no key").isEqualTo(200);
  }

  @Test
  void errorsComeInOpenAisShapeWithTheirStatus() throws Exception {
    OpenAiHttpCluster cluster = OpenAiHttpCluster.start(cleanup, tmp);
    String image = OpenAiHttpCluster.imageDataUri();
    assertError(cluster.post("/v1/chat/completions", null, chatBody(image, "")), 401, "authentication_error",
        "this coordinator requires an API key: send the metadata 'authorization: Bearer KEY' "
            + "(owlery --api-key KEY, or OWLERY_API_KEY)");
    assertError(cluster.post("/v1/chat/completions", KEY + "x", chatBody(image, "")), 401, "authentication_error",
        "the API key is not one this coordinator accepts");
    assertError(cluster.get("/v1/models", null), 401, "authentication_error",
        "this coordinator requires an API key: send the metadata 'authorization: Bearer KEY' "
            + "(owlery --api-key KEY, or OWLERY_API_KEY)");
    assertError(cluster.post("/v1/chat/completions", KEY, "{\"messages\": "), 400, "invalid_request_error",
        "the request body is not valid JSON: Unexpected end-of-input within/between Object entries (at line 1, column 14)");
    assertError(cluster.post("/v1/chat/completions", KEY, chatBody("https://example.com/a.png", "")), 400,
        "invalid_request_error", "this server does not fetch images from URLs; send the image inline as a data: URI "
            + "(data:image/png;base64,... or data:image/jpeg;base64,...) at messages[0].content[0].image_url.url");
    assertError(cluster.post("/v1/chat/completions", KEY, chatBody(image, ", \"max_tokens\": 100000")
        .replace("\"max_tokens\": 8, ", "")), 400, "invalid_request_error", "max_new_tokens");
    assertError(cluster.post("/v1/chat/completions", KEY, chatBody(image, "").replace("tiny-owl2", "gpt-4o")), 404,
        "invalid_request_error", "model 'gpt-4o' is not served here; this cluster serves [tiny-owl2] (ListModels)");
    assertError(cluster.post("/v1/embeddings", KEY, "{}"), 404, "invalid_request_error", "no route POST /v1/embeddings");
    assertError(cluster.get("/v1/chat/completions", KEY), 405, "invalid_request_error",
        "GET /v1/chat/completions is not served; use POST /v1/chat/completions");

    HttpResponse<String> spending = cluster.post("/v1/chat/completions", LIMITED_KEY, chatBody(image, ""));
    assertThat(spending.statusCode()).as("the first call spends the key's 4 tokens/min").isEqualTo(200);
    HttpResponse<String> over = cluster.post("/v1/chat/completions", LIMITED_KEY, chatBody(image, ""));
    assertError(over, 429, "rate_limit_error", "key limited: over 4 generated tokens/min; retry in");
  }

  @Test
  void aClientThatDisconnectsMidStreamCancelsItsSequence() throws Exception {
    OpenAiHttpCluster cluster = OpenAiHttpCluster.start(cleanup, tmp);
    List<FakeShardWorkerNode> shards = cluster.owlery.shards().stream().map(FakeShardWorkerNode.class::cast).toList();
    byte[] body = """
        {"messages": [{"role": "user", "content": "Tell a long story."}], "temperature": 0, "max_tokens": 200,
         "stream": true}
        """.getBytes(StandardCharsets.UTF_8);
    try (Socket socket = new Socket("127.0.0.1", cluster.owlery.coordinator().httpPort())) {
      OutputStream out = socket.getOutputStream();
      out.write(("POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + KEY
          + "\r\nContent-Type: application/json\r\nContent-Length: " + body.length + "\r\n\r\n")
          .getBytes(StandardCharsets.US_ASCII));
      out.write(body);
      out.flush();
      BufferedReader in = new BufferedReader(new InputStreamReader(socket.getInputStream(), StandardCharsets.UTF_8));
      assertThat(in.readLine()).isEqualTo("HTTP/1.1 200 OK");
      // From now on every step takes 100 ms: 200 tokens would take 20 s; the client leaves after its first delta.
      shards.forEach(shard -> shard.delaySteps(Duration.ofMillis(100)));
      int contentChunks = 0;
      for (String line = in.readLine(); line != null && contentChunks < 1; line = in.readLine()) {
        contentChunks += line.contains("\"content\":\"") && !line.contains("\"role\"") ? 1 : 0;
      }
      assertThat(contentChunks).isEqualTo(1);
    }

    await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> {
      assertThat(shards).allSatisfy(shard -> {
        assertThat(shard.numReleased()).isEqualTo(1);
        assertThat(shard.numSequencesHeld()).isZero();
      });
      ShardGroupStatus group = cluster.client.getClusterStatus().getGroups(0);
      assertThat(group.getNumRunningSequences()).isZero();
      assertThat(group.getNumFreeKvBlocks()).as("KV blocks freed").isEqualTo(group.getNumKvBlocks());
    });
    assertThat(PrometheusScrape.of(cluster.owlery.coordinatorMetricsUrl())
        .value("owlery_generate_requests_total", "outcome", "cancelled")).isEqualTo(1.0);
  }

  @Test
  void aFailureAfterTheStreamStartedEndsItWithAnErrorEvent() throws Exception {
    // no standby: the stream ends once the group has not re-formed within 2 s (not the 30 s default)
    OpenAiHttpCluster cluster = OpenAiHttpCluster.start(cleanup, tmp, Duration.ofSeconds(2));
    List<FakeShardWorkerNode> shards = cluster.owlery.shards().stream().map(FakeShardWorkerNode.class::cast).toList();
    // 100 ms a step: 200 tokens would take 20 s; a shard worker stops after the first delta.
    shards.forEach(shard -> shard.delaySteps(Duration.ofMillis(100)));
    HttpResponse<Stream<String>> response = cluster.http.send(HttpRequest.newBuilder(
        URI.create(cluster.baseUrl + "/v1/chat/completions")).timeout(Duration.ofSeconds(60))
        .header("Authorization", "Bearer " + KEY).POST(HttpRequest.BodyPublishers.ofString("""
            {"messages": [{"role": "user", "content": "Tell a long story."}], "temperature": 0, "max_tokens": 200,
             "stream": true}
            """)).build(), HttpResponse.BodyHandlers.ofLines());
    assertThat(response.statusCode()).isEqualTo(200);
    List<String> data = new ArrayList<>();
    try (Stream<String> lines = response.body()) {
      lines.filter(line -> line.startsWith("data: ")).forEach(line -> {
        data.add(line.substring("data: ".length()));
        if (data.size() == 2) { // the role chunk, then the first delta
          shards.getLast().close();
        }
      });
    }
    assertThat(data).as("no [DONE] after an error").doesNotContain("[DONE]");
    JsonNode error = json(data.getLast()).get("error");
    assertThat(error.get("type").textValue()).isEqualTo("server_error");
    assertThat(error.get("code").textValue()).isEqualTo("service_unavailable");
    assertThat(error.get("message").textValue()).contains("shard-1");
  }

  @Test
  void aHundredConcurrentStreamsComplete() throws Exception {
    OpenAiHttpCluster cluster = OpenAiHttpCluster.start(cleanup, tmp);
    List<CompletableFuture<HttpResponse<String>>> streams = new ArrayList<>();
    for (int i = 0; i < 100; i++) {
      // Two prompt rows each (BOS, "Once"), so that a hundred prompts cost the two shared cores little.
      String body = """
          {"prompt": [1, 9038], "max_tokens": 3, "seed": %d, "temperature": 1, "stream": true}
          """.formatted(i);
      streams.add(cluster.http.sendAsync(HttpRequest.newBuilder(URI.create(cluster.baseUrl + "/v1/completions"))
          .timeout(Duration.ofSeconds(120)).header("Authorization", "Bearer " + KEY)
          .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString()));
    }
    for (CompletableFuture<HttpResponse<String>> stream : streams) {
      HttpResponse<String> response = stream.join();
      assertThat(response.statusCode()).as(response.body()).isEqualTo(200);
      List<String> events = events(response.body());
      assertThat(events.getLast()).isEqualTo("[DONE]");
      assertThat(json(events.get(events.size() - 2)).get("choices").get(0).get("finish_reason").isTextual()).isTrue();
    }
    assertThat(PrometheusScrape.of(cluster.owlery.coordinatorMetricsUrl())
        .value("owlery_generate_requests_total", "outcome", "ok")).isEqualTo(100.0);
  }

  @Test
  void completionsAnswerWithLegacyLogprobsAndStopAtAStopSequence() throws Exception {
    OpenAiHttpCluster cluster = OpenAiHttpCluster.start(cleanup, tmp);
    String request = "{\"model\": \"tiny-owl2\", \"prompt\": \"Once upon a time\", \"max_tokens\": 12, "
        + "\"temperature\": 0, \"logprobs\": 2%s}";
    HttpResponse<String> first = cluster.post("/v1/completions", KEY, request.formatted(""));
    assertThat(first.statusCode()).as(first.body()).isEqualTo(200);
    JsonNode body = json(first.body());
    assertThat(body.get("object").textValue()).isEqualTo("text_completion");
    assertThat(body.get("id").textValue()).startsWith("cmpl-");
    JsonNode choice = body.get("choices").get(0);
    String text = choice.get("text").textValue();
    JsonNode logprobs = choice.get("logprobs");
    assertThat(logprobs.get("tokens")).hasSize(12);
    assertThat(logprobs.get("token_logprobs")).hasSize(12);
    assertThat(logprobs.get("top_logprobs")).hasSize(12).allSatisfy(top -> assertThat(top.size()).isBetween(1, 2));
    assertThat(logprobs.get("text_offset").get(0).intValue()).isZero();

    String stop = text.strip().substring(0, Math.min(3, text.strip().length()));
    int at = text.indexOf(stop);
    HttpResponse<String> stopped = cluster.post("/v1/completions", KEY,
        request.formatted(", \"stop\": " + OpenAiHttpCluster.JSON.writeValueAsString(stop)));
    JsonNode stoppedChoice = json(stopped.body()).get("choices").get(0);
    assertThat(stoppedChoice.get("text").textValue()).as("the text before the stop sequence").isEqualTo(
        text.substring(0, at));
    assertThat(stoppedChoice.get("finish_reason").textValue()).isEqualTo("stop");
  }

  private static List<Integer> ints(JsonNode array) {
    List<Integer> values = new ArrayList<>();
    array.forEach(value -> values.add(value.intValue()));
    return values;
  }

  private static void assertError(HttpResponse<String> response, int status, String type, String messageStart)
      throws Exception {
    assertThat(response.statusCode()).as(response.body()).isEqualTo(status);
    assertThat(response.headers().firstValue("content-type")).hasValue("application/json");
    JsonNode error = json(response.body()).get("error");
    assertThat(error.get("type").textValue()).isEqualTo(type);
    assertThat(error.get("message").textValue()).contains(messageStart);
    assertThat(error.has("param")).isTrue();
    assertThat(error.has("code")).isTrue();
  }
}
