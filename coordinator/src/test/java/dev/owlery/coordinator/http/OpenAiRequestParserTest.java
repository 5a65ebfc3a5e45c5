package dev.owlery.coordinator.http;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.owlery.proto.v1.GenerateRequest;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import org.junit.jupiter.api.Test;

/** The JSON bodies of the OpenAI API as {@code Generate} requests, and the bodies refused, each in one sentence naming the field. */
class OpenAiRequestParserTest {

  private final OpenAiRequestParser parser = new OpenAiRequestParser(1 << 20, ImageUrls.NONE);

  private OpenAiRequest chat(String json) {
    return parser.parseChat(json.getBytes(StandardCharsets.UTF_8));
  }

  private void assertRefused(String json, String param, String message) {
    assertThatThrownBy(() -> chat(json)).isInstanceOfSatisfying(OpenAiRequestException.class, e -> {
      assertThat(e.param()).isEqualTo(param);
      assertThat(e.getMessage()).contains(message);
    });
  }

  @Test
  void samplingFieldsBecomeTheGenerateRequestsFields() {
    OpenAiRequest request = chat("""
        {"model": "m", "messages": [{"role": "user", "content": "Hi"}], "max_completion_tokens": 7,
         "temperature": 0.5, "top_p": 0.9, "stop": ["\\n", "END"], "seed": -3, "n": 1, "logprobs": true,
         "top_logprobs": 2, "stream": true, "stream_options": {"include_usage": true}, "return_token_ids": true}
        """);
    GenerateRequest generate = request.generate();
    assertThat(generate.getModel()).isEqualTo("m");
    assertThat(generate.getMaxNewTokens()).isEqualTo(7);
    assertThat(generate.getTemperature()).isEqualTo(0.5f);
    assertThat(generate.getTopP()).isEqualTo(0.9f);
    assertThat(generate.getStopStringsList()).containsExactly("\n", "END");
    assertThat(generate.getSeed()).isEqualTo(-3L);
    assertThat(generate.getLogprobs()).isTrue();
    assertThat(generate.getNumTopLogprobs()).isEqualTo(2);
    assertThat(request.stream()).isTrue();
    assertThat(request.includeUsage()).isTrue();
    assertThat(request.returnTokenIds()).isTrue();
    assertThat(chat("{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"max_tokens\": 3, \"stop\": \"x\"}")
        .generate()).satisfies(g -> {
          assertThat(g.getMaxNewTokens()).isEqualTo(3);
          assertThat(g.getStopStringsList()).containsExactly("x");
          assertThat(g.hasTemperature()).isFalse();
        });
  }

  @Test
  void anImageComesAsTheBytesOfItsDataUri() {
    byte[] png = {(byte) 0x89, 'P', 'N', 'G', 0, 1, 2};
    OpenAiRequest request = chat("""
        {"messages": [{"role": "user", "content": [{"type": "image_url",
          "image_url": {"url": "data:image/png;base64,%s", "detail": "auto"}}]}]}
        """.formatted(Base64.getEncoder().encodeToString(png)));
    assertThat(request.generate().getImages(0).getData().toByteArray()).containsExactly(png);
  }

  @Test
  void badBodiesAreRefusedNamingTheField() {
    assertRefused("{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image_url\", \"image_url\": "
        + "{\"url\": \"https://example.com/cat.png\"}}]}]}", "messages[0].content[0].image_url.url",
        "this server does not fetch images from URLs; send the image inline as a data: URI");
    assertRefused("{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image_url\", \"image_url\": "
        + "{\"url\": \"data:image/gif;base64,R0lG\"}}]}]}", "messages[0].content[0].image_url.url",
        "must hold a PNG or JPEG image (data:image/png or data:image/jpeg). Given: media type 'image/gif'");
    assertRefused("{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image_url\", \"image_url\": "
        + "{\"url\": \"data:image/png;base64,@@@\"}}]}]}", "messages[0].content[0].image_url.url", "is not valid base64");
    assertRefused("{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}]}", "messages[0].role",
        "mPLUG-Owl2's conversation template has no system turn");
    assertRefused("{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"n\": 2}", "n", "n must be 1. Given: 2");
    assertRefused("{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"tools\": []}", "tools",
        "'tools' is not supported by this server");
    assertRefused("{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"temperature\": 3}", "temperature",
        "temperature must be a number in [0.0, 2.0]. Given: 3");
    assertRefused("{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"top_logprobs\": 2}", "top_logprobs",
        "top_logprobs needs logprobs: true");
    assertRefused("{\"messages\": [{\"role\": \"user\", \"content\": \"a <|image|> b\"}]}", "messages[0].content",
        "which is the model's image placeholder; send images as image_url parts");
    assertRefused("{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"stream_options\": {}}",
        "stream_options", "stream_options is only allowed with stream: true");
    assertRefused("{\"messages\": []", null, "the request body is not valid JSON");
    assertRefused("[1]", null, "the request body must be a JSON object. Given: an array");
    assertRefused("{}", "messages", "messages is required");
  }

  @Test
  void aCompletionTakesTextOrTokenIdsAndLegacyLogprobs() {
    OpenAiRequest text = parser.parseCompletion("{\"prompt\": \"Once upon\", \"logprobs\": 3, \"max_tokens\": 5}"
        .getBytes(StandardCharsets.UTF_8));
    assertThat(text.kind()).isEqualTo(OpenAiRequest.Kind.COMPLETION);
    assertThat(text.generate().getPromptText()).isEqualTo("Once upon");
    assertThat(text.generate().getLogprobs()).isTrue();
    assertThat(text.generate().getNumTopLogprobs()).isEqualTo(3);
    OpenAiRequest ids = parser.parseCompletion("{\"prompt\": [1, 450, 4996]}".getBytes(StandardCharsets.UTF_8));
    assertThat(ids.generate().getPromptTokenIds().getTokenIdsList()).containsExactly(1, 450, 4996);
    assertThat(ids.generate().getLogprobs()).isFalse();
    assertThatThrownBy(() -> parser.parseCompletion("{\"prompt\": [\"a\", \"b\"]}".getBytes(StandardCharsets.UTF_8)))
        .hasMessageContaining("prompt must be a string or an array of token ids");
  }
}
