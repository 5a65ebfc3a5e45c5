package dev.owlery.loadtest;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Dataset files: what each format yields, and bad entries named by file and line. */
class DatasetsTest {

  @TempDir
  Path dir;

  @Test
  void jsonlEntriesCarryPromptImagesAndLengths() throws IOException {
    Files.write(dir.resolve("owl.png"), new byte[] {1, 2, 3});
    Path file = Files.writeString(dir.resolve("requests.jsonl"), """
        {"prompt": "<|image|>What is this?", "images": ["owl.png"], "max_tokens": 12}

        {"prompt_ids": [1, 450, 4996], "expected_output": "A story."}
        """);

    List<DatasetEntry> entries = Datasets.readJsonl(file);

    assertThat(entries).hasSize(2);
    assertThat(entries.get(0).prompt()).isEqualTo("<|image|>What is this?");
    assertThat(entries.get(0).images()).hasSize(1);
    assertThat(entries.get(0).images().getFirst().getData().toByteArray()).containsExactly(1, 2, 3);
    assertThat(entries.get(0).maxTokens()).isEqualTo(12);
    assertThat(entries.get(1).promptIds()).containsExactly(1, 450, 4996);
    assertThat(entries.get(1).maxTokens()).isZero();
    assertThat(entries.get(1).expectedOutput()).isEqualTo("A story.");
  }

  @Test
  void badJsonlLinesAreNamedByFileAndLine() throws IOException {
    Path notJson = Files.writeString(dir.resolve("a.jsonl"), "{\"prompt\": \"ok\"}\n{\"prompt\": \n");
    Path both = Files.writeString(dir.resolve("b.jsonl"), "{\"prompt\": \"x\", \"prompt_ids\": [1]}\n");
    Path badMax = Files.writeString(dir.resolve("c.jsonl"), "\n\n{\"prompt\": \"x\", \"max_tokens\": 0}\n");
    Path noImage = Files.writeString(dir.resolve("d.jsonl"), "{\"prompt\": \"x\", \"images\": [\"gone.png\"]}\n");

    assertThatThrownBy(() -> Datasets.readJsonl(notJson)).hasMessageStartingWith(notJson + ":2: not a JSON object");
    assertThatThrownBy(() -> Datasets.readJsonl(both)).hasMessage(both + ":1: give exactly one of \"prompt\" (text) "
        + "and \"prompt_ids\" (token ids)");
    assertThatThrownBy(() -> Datasets.readJsonl(badMax)).hasMessage(badMax + ":3: \"max_tokens\" must be an integer "
        + ">= 1, got 0");
    assertThatThrownBy(() -> Datasets.readJsonl(noImage)).hasMessage(noImage + ":1: cannot read image "
        + dir.resolve("gone.png").toAbsolutePath());
  }

  @Test
  void shareGptTakesTheFirstTwoTurnsAndLeavesOutShorterConversations() throws IOException {
    Path file = Files.writeString(dir.resolve("sharegpt.json"), """
        [{"id": "a", "conversations": [{"from": "human", "value": "Hi?"}, {"from": "gpt", "value": "Hello."},
                                       {"from": "human", "value": "More"}]},
         {"id": "b", "conversations": [{"from": "human", "value": "alone"}]}]
        """);
    Path broken = Files.writeString(dir.resolve("broken.json"), "[\n{\"conversations\": 3}]");

    List<DatasetEntry> entries = Datasets.readShareGpt(file);

    assertThat(entries).hasSize(1);
    assertThat(entries.getFirst().prompt()).isEqualTo("Hi?");
    assertThat(entries.getFirst().expectedOutput()).isEqualTo("Hello.");
    assertThatThrownBy(() -> Datasets.readShareGpt(broken)).hasMessage(broken + ": conversation 0: \"conversations\" "
        + "must be an array of turns");
  }
}
