package dev.owlery.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.checkpoint.SafetensorsCheckpoint;
import dev.owlery.engine.kernel.KernelsProvider;
import dev.owlery.engine.model.CompletionListener;
import dev.owlery.engine.model.GenerationRequest;
import dev.owlery.engine.model.InProcessGenerator;
import dev.owlery.engine.model.OwlModel;
import dev.owlery.engine.model.Prompt;
import dev.owlery.engine.sampling.SamplingParams;
import dev.owlery.engine.testing.Fixtures;
import dev.owlery.engine.tokenizer.ChatTemplate;
import dev.owlery.engine.vision.preprocess.AspectRatioPolicy;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Collectors;
import java.util.stream.StreamSupport;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code owlery generate} end to end, in-process, against the reference fixtures. */
class GenerateCommandTest {

  private static final ObjectMapper JSON = new ObjectMapper();

  @Test
  void stories260kGreedyIdsAreRunCsForEveryPrompt() throws IOException {
    Path model = Fixtures.stories260k();
    JsonNode cases = JSON.readTree(model.getParent().resolve("expected.json").toFile()).get("cases");
    for (JsonNode c : cases) {
      String promptIds = StreamSupport.stream(c.get("prompt_ids").spliterator(), false)
          .map(JsonNode::asText).collect(Collectors.joining(","));
      int newTokens = c.get("n_generated").asInt();

      CliRun run = CliRun.of("generate", "--model", model.toString(), "--prompt-ids", promptIds,
          "--max-new-tokens", String.valueOf(newTokens), "--output", "json");

      assertThat(run.exitCode()).as(run.err()).isZero();
      JsonNode result = JSON.readTree(run.out());
      assertThat(result.get("prompt_token_ids")).isEqualTo(c.get("prompt_ids"));
      assertThat(result.get("token_ids")).as("prompt %s", c.get("prompt")).isEqualTo(c.get("generated_ids"));
      assertThat(result.get("finish_reason").asText()).isEqualTo("max_new_tokens");
      assertThat(result.get("text").asText()).isEqualTo(c.get("generated_text_sentencepiece_decode").asText().strip());
    }
  }

  @Test
  void tinyOwl2WithAPictureMatchesTheOfficialRunIncludingDumpedLogits(@TempDir Path tmp) throws IOException {
    Path model = Fixtures.tinyOwl2();
    Path dump = tmp.resolve("logits.safetensors");

    CliRun run = CliRun.of("generate", "--model", model.toString(), "--image", model.resolve("test_image.png").toString(),
        "--prompt", "USER: <|image|>Describe the image. ASSISTANT:", "--template", "none",
        "--image-aspect-ratio", "resize", "--max-new-tokens", "8", "--output", "json", "--dump-logits", dump.toString(),
        "--kv-cache-dtype", "f32"); // the fixture's float32 run: the default F16 cache moves these logits by 6.6e-3

    assertThat(run.exitCode()).as(run.err()).isZero();
    JsonNode result = JSON.readTree(run.out());
    try (Checkpoint reference = SafetensorsCheckpoint.openFile(model.resolve("reference.safetensors"));
        Checkpoint dumped = SafetensorsCheckpoint.openFile(dump)) {
      assertThat(ints(result.get("prompt_token_ids"))).containsExactly(longsToInts(reference.tensor("input_ids").toLongArray()));
      long[] tokens = reference.tensor("generate.tokens").toLongArray();
      assertThat(ints(result.get("token_ids"))).containsExactly(longsToInts(tokens));
      assertThat(dumped.tensor("token_ids", tokens.length).toLongArray()).containsExactly(tokens);
      // Fixture README "Tolerances": float32 logits within 1e-3 of the official float32 run.
      assertThat(maxAbsDiff(dumped.tensor("prompt_logits", 24, 32000).toFloatArray(),
          reference.tensor("logits").toFloatArray())).isLessThanOrEqualTo(1e-3f);
      assertThat(maxAbsDiff(dumped.tensor("step_logits", tokens.length, 32000).toFloatArray(),
          reference.tensor("generate.step_logits").toFloatArray())).isLessThanOrEqualTo(1e-3f);
    }
  }

  @Test
  void textOutputStreamsTheSameTextTheJsonReports() {
    Path model = Fixtures.stories260k();
    String[] common = {"generate", "--model", model.toString(), "--prompt", "Once upon a time", "--template", "none",
        "--max-new-tokens", "20"};

    CliRun text = CliRun.of(common);
    CliRun json = CliRun.of(concat(common, "--output", "json"));

    assertThat(text.exitCode()).as(text.err()).isZero();
    assertThat(text.out().strip()).isEqualTo(jsonText(json));
  }

  @Test
  void minPAndPenaltyFlagsReachTheSampler() throws IOException {
    Path model = Fixtures.stories260k();
    String[] common = {"generate", "--model", model.toString(), "--prompt", "Once upon a time", "--template", "none",
        "--max-new-tokens", "32", "--output", "json"};

    JsonNode plain = json(CliRun.of(common));
    JsonNode penalized = json(CliRun.of(concat(common, "--presence-penalty", "2", "--frequency-penalty", "0.5")));
    JsonNode minP = json(CliRun.of(concat(common, "--temperature", "1", "--top-k", "0", "--min-p", "0.5", "--seed", "7")));

    assertThat(ints(penalized.get("token_ids"))).containsExactly(inProcess(model,
        SamplingParams.greedy().withPenalties(2f, 0.5f)));
    assertThat(penalized.get("token_ids")).isNotEqualTo(plain.get("token_ids"));
    assertThat(ints(minP.get("token_ids"))).containsExactly(inProcess(model,
        new SamplingParams(true, 1f, 0, 1f, 0.5f, 1f, 0f, 0f, 7L)));
  }

  @Test
  void outOfRangeMinPAndPenaltiesGetOneLineErrors() {
    Path model = Fixtures.stories260k();

    CliRun minP = CliRun.of("generate", "--model", model.toString(), "--prompt", "Hi", "--min-p", "1.5");
    CliRun presence = CliRun.of("generate", "--model", model.toString(), "--prompt", "Hi", "--presence-penalty", "3");

    assertThat(minP.exitCode()).isEqualTo(2);
    assertThat(minP.err()).contains("owlery: error: min_p must be in [0, 1] (0 disables it), got 1.5");
    assertThat(presence.exitCode()).isEqualTo(2);
    assertThat(presence.err()).contains("owlery: error: presence_penalty must be in [-2, 2] (0 disables it), got 3.0");
  }

  /** The ids the engine's generator picks for the same prompt with {@code sampling}. */
  private static int[] inProcess(Path model, SamplingParams sampling) {
    try (OwlModel owl = OwlModel.load(model, 1, KernelsProvider.shared())) {
      return new InProcessGenerator(owl).generate(new GenerationRequest(new Prompt.Text("Once upon a time"), List.of(),
          ChatTemplate.NONE, AspectRatioPolicy.PAD, sampling, 32, false), CompletionListener.NONE).tokenIds();
    }
  }

  private static JsonNode json(CliRun run) throws IOException {
    assertThat(run.exitCode()).as(run.err()).isZero();
    return JSON.readTree(run.out());
  }

  @Test
  void badArgumentsGetOneLineErrors() {
    Path model = Fixtures.stories260k();

    CliRun badOutput = CliRun.of("generate", "--model", model.toString(), "--prompt", "Hi", "--output", "xml");
    CliRun imageOnTextModel = CliRun.of("generate", "--model", model.toString(), "--prompt", "Hi",
        "--image", model.resolve("config.json").toString());
    CliRun missingModel = CliRun.of("generate", "--model", model.resolve("nope").toString(), "--prompt", "Hi");
    CliRun badKvCache = CliRun.of("generate", "--model", model.toString(), "--prompt", "Hi", "--kv-cache-dtype", "bf16");
    CliRun kvCacheOfAServer = CliRun.of("generate", "--server", "127.0.0.1:1", "--prompt", "Hi", "--kv-cache-dtype", "f32");

    assertThat(badOutput.exitCode()).isEqualTo(2);
    assertThat(badOutput.err()).contains("--output must be text or json, got 'xml'");
    assertThat(imageOnTextModel.exitCode()).isEqualTo(2);
    assertThat(imageOnTextModel.err()).contains("owlery: error:");
    assertThat(missingModel.exitCode()).isEqualTo(2);
    assertThat(missingModel.err()).isEqualTo("owlery: error: no such directory: " + model.resolve("nope") + "\n");
    assertThat(badKvCache.exitCode()).isEqualTo(2);
    assertThat(badKvCache.err()).isEqualTo("owlery: error: --kv-cache-dtype must be f16 or f32. Given: \"bf16\"\n");
    assertThat(kvCacheOfAServer.exitCode()).isEqualTo(2);
    assertThat(kvCacheOfAServer.err())
        .contains("--kv-cache-dtype works in-process only; a cluster's is the coordinator's --kv-cache-dtype");
  }

  @Test
  void aModelDirectoryWithoutConfigAndUnreadablePicturesAreSaidInOneSentence(@TempDir Path tmp) throws IOException {
    Path model = Fixtures.stories260k();
    Path notAPicture = model.resolve("config.json");

    CliRun noConfig = CliRun.of("generate", "--model", tmp.toString(), "--prompt", "Hi");
    CliRun noPicture = CliRun.of("generate", "--model", model.toString(), "--prompt", "Hi",
        "--image", tmp.resolve("photo.jpg").toString());
    CliRun badPicture = CliRun.of("generate", "--model", model.toString(), "--prompt", "Hi",
        "--image", notAPicture.toString());

    assertThat(noConfig.err()).isEqualTo("owlery: error: no config.json in " + tmp + ": is this a model directory?\n");
    assertThat(noPicture.err()).isEqualTo("owlery: error: no such file: " + tmp.resolve("photo.jpg") + "\n");
    assertThat(badPicture.err()).startsWith("owlery: error: cannot decode " + notAPicture + ": the "
        + java.nio.file.Files.size(notAPicture) + " bytes are not a PNG");
    assertThat(badPicture.err().lines()).hasSize(1);
  }

  @Test
  void aPictureDamagedPastItsHeaderIsNamedByItsFile(@TempDir Path tmp) throws IOException {
    Path truncated = tmp.resolve("truncated.png");
    byte[] picture = java.nio.file.Files.readAllBytes(Fixtures.tinyOwl2().resolve("test_image.png"));
    java.nio.file.Files.write(truncated, java.util.Arrays.copyOf(picture, 200));

    CliRun run = CliRun.of("generate", "--model", Fixtures.tinyOwl2().toString(), "--prompt", "Describe.",
        "--image", truncated.toString(), "--max-new-tokens", "1");

    assertThat(run.exitCode()).isEqualTo(2);
    assertThat(run.err()).startsWith("owlery: error: cannot decode " + truncated + ": the PNG data ends early");
    assertThat(run.err().lines()).hasSize(1);
  }

  @Test
  void aBadFlagGetsOneLineAndAHintForEverySubcommand() {
    CliRun generate = CliRun.of("generate", "--bogus");
    CliRun local = CliRun.of("local", "--shards", "two");
    CliRun nan = CliRun.of("generate", "--prompt", "Hi", "--top-p", "half");

    assertThat(generate.exitCode()).isEqualTo(2);
    assertThat(generate.err().lines()).containsExactly("owlery: error: Unknown option: '--bogus'",
        "run 'owlery generate --help' for the options");
    assertThat(local.exitCode()).isEqualTo(2);
    assertThat(local.err().lines()).hasSize(2).last().isEqualTo("run 'owlery local --help' for the options");
    assertThat(nan.err().lines()).containsExactly("owlery: error: Invalid value for option '--top-p': 'half' is not a number",
        "run 'owlery generate --help' for the options");
  }

  @Test
  void timeoutsTakeAUnitOrIso8601() {
    assertThat(dev.owlery.loadtest.Durations.parse("5s")).isEqualTo(java.time.Duration.ofSeconds(5));
    assertThat(dev.owlery.loadtest.Durations.parse("2m")).isEqualTo(java.time.Duration.ofMinutes(2));
    assertThat(dev.owlery.loadtest.Durations.parse("500ms")).isEqualTo(java.time.Duration.ofMillis(500));
    assertThat(dev.owlery.loadtest.Durations.parse("1.5h")).isEqualTo(java.time.Duration.ofMinutes(90));
    assertThat(dev.owlery.loadtest.Durations.parse("PT5S")).isEqualTo(java.time.Duration.ofSeconds(5));

    CliRun bad = CliRun.of("generate", "--server", "127.0.0.1:1", "--prompt", "Hi", "--timeout", "5 parsecs");

    assertThat(bad.exitCode()).isEqualTo(2);
    assertThat(bad.err().lines()).containsExactly("owlery: error: Invalid value for option '--timeout': '5 parsecs' is "
        + "not a duration; give a number and a unit (500ms, 5s, 2m, 1h) or ISO-8601 (PT5S)",
        "run 'owlery generate --help' for the options");
  }

  @Test
  void controlCharactersAreEscapedOnATerminalOnly() {
    assertThat(TerminalText.escape("a\u0007b\nc\td\u001b[2J\r\u007f")).isEqualTo("a\\u0007b\nc\td\\u001b[2J\\u000d\\u007f");
    assertThat(TerminalText.escape("plain\ttext\n")).isEqualTo("plain\ttext\n");
    TerminalText terminal = new TerminalText();
    assertThat(terminal.show("\u0007")).as("a test's stdout is no terminal").isEqualTo("\u0007");
    terminal.forceTerminal = true;
    assertThat(terminal.show("\u0007")).isEqualTo("\\u0007");
  }

  private static String jsonText(CliRun run) {
    try {
      return JSON.readTree(run.out()).get("text").asText();
    } catch (IOException e) {
      throw new AssertionError(run.out(), e);
    }
  }

  private static String[] concat(String[] a, String... b) {
    String[] out = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }

  private static int[] ints(JsonNode array) {
    return StreamSupport.stream(array.spliterator(), false).mapToInt(JsonNode::asInt).toArray();
  }

  private static int[] longsToInts(long[] values) {
    return Arrays.stream(values).mapToInt(Math::toIntExact).toArray();
  }

  private static float maxAbsDiff(float[] a, float[] b) {
    assertThat(a).hasSameSizeAs(b);
    float max = 0;
    for (int i = 0; i < a.length; i++) {
      max = Math.max(max, Math.abs(a[i] - b[i]));
    }
    return max;
  }
}
