package dev.owlery.engine.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.owlery.engine.testing.Fixtures;
import java.io.IOException;
import org.junit.jupiter.api.Test;

class ChatTemplateTest {

  @Test
  void buildsTheOfficialPromptsOfTheTinyOwl2Fixture() throws IOException {
    JsonNode inputs = new ObjectMapper().readTree(Fixtures.tinyOwl2().resolve("reference.json").toFile()).get("inputs");
    JsonNode examples = inputs.get("tokenization_examples");
    assertThat(ChatTemplate.MPLUG_OWL2.prompt("Describe the image.", 1)).isEqualTo(inputs.get("prompt").asText());
    assertThat(ChatTemplate.MPLUG_OWL2.prompt("Hello! Who are you?", 0))
        .isEqualTo(inputs.get("text_only_prompt").asText());
    // A question that places its own placeholder keeps it where it is.
    assertThat(ChatTemplate.MPLUG_OWL2.prompt("Look at this <|image|> and describe it.", 1))
        .isEqualTo(examples.get(1).get("text").asText());
    assertThat(ChatTemplate.MPLUG_OWL2.prompt("Compare the two pictures.", 2))
        .isEqualTo(examples.get(2).get("text").asText());
  }

  @Test
  void noneLeavesTheTextAsGiven() {
    assertThat(ChatTemplate.NONE.prompt("Once upon a time", 0)).isEqualTo("Once upon a time");
    assertThat(ChatTemplate.NONE.prompt("<|image|> caption:", 1)).isEqualTo("<|image|> caption:");
  }

  @Test
  void rejectsPlaceholdersThatDoNotMatchTheImages() {
    assertThatThrownBy(() -> ChatTemplate.MPLUG_OWL2.prompt("<|image|> vs <|image|>?", 1))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("2 <|image|> placeholders but 1 images");
    assertThatThrownBy(() -> ChatTemplate.NONE.prompt("a picture", 1))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("0 <|image|> placeholders but 1 images");
  }
}
