package dev.owlery.engine.tokenizer;

import static dev.owlery.engine.tokenizer.SentencePieceTokenizerTest.ints;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.owlery.engine.testing.Fixtures;
import java.io.IOException;
import java.nio.file.Path;
import java.util.stream.IntStream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class LlamaTokenizerTest {

  private static LlamaTokenizer tokenizer;
  private static JsonNode inputs;

  @BeforeAll
  static void load() throws IOException {
    Path dir = Fixtures.tinyOwl2();
    tokenizer = new LlamaTokenizer(SentencePieceTokenizer.load(dir.resolve("tokenizer.model")));
    inputs = new ObjectMapper().readTree(dir.resolve("reference.json").toFile()).get("inputs");
  }

  @Test
  void tokenizesTheReferencePromptToTheOfficialIds() {
    assertThat(inputs.get("image_token_index").asInt()).isEqualTo(ImageToken.INDEX);
    assertThat(inputs.get("image_placeholder_text").asText()).isEqualTo(ImageToken.PLACEHOLDER);
    // [1, 3148, 1001, 29901, 29871, -200, 20355, ...]: the lone ▁ ends "USER: ", a fresh dummy prefix after the image.
    assertThat(tokenizer.tokenizeImagePrompt(inputs.get("prompt").asText()))
        .containsExactly(ints(inputs.get("input_ids")));
  }

  @Test
  void tokenizesEveryOfficialExample() {
    // Multi-turn with </s>, an image mid-sentence, two adjacent images, non-ASCII text with byte fallback.
    for (JsonNode example : inputs.get("tokenization_examples")) {
      String text = example.get("text").asText();
      assertThat(tokenizer.tokenizeImagePrompt(text)).as(text).containsExactly(ints(example.get("input_ids")));
    }
  }

  @Test
  void tokenizesATextOnlyPromptLikeTheTokenizerCall() {
    String prompt = inputs.get("text_only_prompt").asText();
    int[] expected = ints(inputs.get("text_only_input_ids"));
    assertThat(tokenizer.tokenizeImagePrompt(prompt)).containsExactly(expected);
    assertThat(tokenizer.encodeWithSpecials(prompt, true)).containsExactly(expected);
  }

  @Test
  void splitsSpecialTokenTextsOutWithAFreshDummyPrefixAfterEach() {
    // Spec §6: "A house.</s>USER: Where" -> ▁A ▁house . </s> ▁US ER : ▁Where; a space before a special is a lone ▁.
    assertThat(tokenizer.encodeWithSpecials("A house.</s>USER: Where", false))
        .containsExactly(319, 3699, 29889, 2, 3148, 1001, 29901, 6804);
    assertThat(tokenizer.encodeWithSpecials("<unk>x <s></s>", true))
        .containsExactly(1, 0, 921, 29871, 1, 2);
  }

  @Test
  void keepsEveryChunksBosWhenThePromptStartsWithAnImage() {
    // Spec §5: an empty first chunk strips nothing, so there is no BOS in front and one right after the image.
    int[] chunk = tokenizer.encodeWithSpecials("Describe the image.", true);
    int[] expected = IntStream.concat(IntStream.of(ImageToken.INDEX), IntStream.of(chunk)).toArray();
    assertThat(tokenizer.tokenizeImagePrompt("<|image|>Describe the image.")).containsExactly(expected);
    assertThat(expected[1]).isEqualTo(1);
    assertThat(tokenizer.tokenizeImagePrompt("USER: <|image|>")).containsExactly(1, 3148, 1001, 29901, 29871, -200);
  }
}
