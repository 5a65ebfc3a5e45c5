package dev.owlery.coordinator.http;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.owlery.coordinator.model.ServedModel;
import dev.owlery.engine.testing.Fixtures;
import dev.owlery.proto.v1.PromptTemplate;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.List;
import java.util.stream.StreamSupport;
import org.junit.jupiter.api.Test;

/**
 * A chat conversation becomes mPLUG-Owl2's prompt exactly as the official code builds and
 * tokenizes it: the multi-turn example of the tiny-owl2 fixture ({@code reference.json},
 * {@code inputs.tokenization_examples}, made by the official tokenizer) sent as OpenAI messages.
 */
class ChatConversationTest {

  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String IMAGE = "data:image/png;base64," + Base64.getEncoder().encodeToString(new byte[] {1, 2});

  @Test
  void aMultiTurnConversationWithAnImageTokenizesAsTheOfficialTemplate() throws IOException {
    String messages = """
        {"model": "tiny-owl2", "messages": [
          {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "%s"}},
                                       {"type": "text", "text": "What is shown here?"}]},
          {"role": "assistant", "content": "A house."},
          {"role": "user", "content": "Where is the sun?"}]}
        """.formatted(IMAGE);
    OpenAiRequest request = new OpenAiRequestParser(1 << 20, ImageUrls.NONE).parseChat(messages.getBytes(StandardCharsets.UTF_8));

    String expectedText = "USER: <|image|>What is shown here? ASSISTANT: A house.</s>USER: Where is the sun? ASSISTANT:";
    assertThat(request.generate().getPromptText()).isEqualTo(expectedText);
    assertThat(request.generate().getTemplate()).isEqualTo(PromptTemplate.PROMPT_TEMPLATE_NONE);
    assertThat(request.generate().getImagesCount()).isEqualTo(1);
    JsonNode official = officialExample(expectedText);
    ServedModel model = ServedModel.load(Fixtures.tinyOwl2(), "tiny-owl2");
    assertThat(model.tokenizer().tokenizeImagePrompt(request.generate().getPromptText()))
        .containsExactly(StreamSupport.stream(official.get("input_ids").spliterator(), false)
            .mapToInt(JsonNode::intValue).toArray());
  }

  @Test
  void imagesStayWhereTheirPartsAre() {
    String body = """
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "Look at this"},
          {"type": "image_url", "image_url": {"url": "%s"}}, {"type": "text", "text": " and describe it."}]}]}
        """.formatted(IMAGE);
    assertThat(new OpenAiRequestParser(1 << 20, ImageUrls.NONE).parseChat(body.getBytes(StandardCharsets.UTF_8)).generate()
        .getPromptText()).isEqualTo("USER: Look at this<|image|> and describe it. ASSISTANT:");
  }

  @Test
  void turnsMustAlternateFromUserToUser() {
    assertThatThrownBy(() -> ChatConversation.prompt(List.of(new ChatTurn(ChatTurn.Role.ASSISTANT, "Hi"))))
        .isInstanceOfSatisfying(OpenAiRequestException.class, e -> {
          assertThat(e.param()).isEqualTo("messages[0].role");
          assertThat(e).hasMessage("messages must alternate user and assistant, starting with user; messages[0] is "
              + "assistant where user was expected");
        });
    assertThatThrownBy(() -> ChatConversation.prompt(List.of(new ChatTurn(ChatTurn.Role.USER, "Hi"),
        new ChatTurn(ChatTurn.Role.ASSISTANT, "Hello"))))
        .hasMessage("the last message must be the user's (the model answers it); messages[1] is assistant");
  }

  private static JsonNode officialExample(String text) throws IOException {
    JsonNode reference = JSON.readTree(Fixtures.tinyOwl2().resolve("reference.json").toFile());
    for (JsonNode example : reference.get("inputs").get("tokenization_examples")) {
      if (example.get("text").textValue().equals(text)) {
        return example;
      }
    }
    throw new AssertionError("reference.json has no tokenization example " + text);
  }
}
