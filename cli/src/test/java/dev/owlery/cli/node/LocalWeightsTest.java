package dev.owlery.cli.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.owlery.cli.CliRun;
import dev.owlery.engine.testing.Fixtures;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code owlery local --weights FORMAT}, the command as a process: its shard workers hold their
 * slices in that format, so a 2-shard stories260k cluster started with {@code --weights q8_0}
 * answers what one process with the same 2 slices in Q8_0 answers (greedy ids, top-5
 * log-probabilities within 1e-4, float32 KV caches on both sides, as in {@code
 * LocalClusterParityTest}); and a format that does not exist is refused in one sentence.
 */
class LocalWeightsTest {

  private static final ObjectMapper JSON = new ObjectMapper();
  /** As LocalClusterParityTest: the shards sum their partials in another order than one process. */
  private static final double LOGPROB_TOLERANCE = 1e-4;
  private static final List<String> REQUEST = List.of("--prompt", "Once upon a time", "--max-new-tokens", "24",
      "--output", "json", "--logprobs", "5", "--template", "none");

  @Test
  void aLocalClusterWithQ8_0WeightsAnswersWhatOneProcessWithQ8_0SlicesAnswers(@TempDir Path tmp) throws Exception {
    Path model = Fixtures.stories260k();
    JsonNode expected = generate("generate", "--model", model.toString(), "--tensor-parallel", "2",
        "--kv-cache-dtype", "f32", "--weights", "q8_0");
    JsonNode stored = generate("generate", "--model", model.toString(), "--tensor-parallel", "2",
        "--kv-cache-dtype", "f32", "--weights", "stored");
    // Q8_0 moves the log-probabilities past the tolerance: a cluster left on stored weights fails below.
    assertThat(maxLogprobDifference(stored, expected)).isGreaterThan(LOGPROB_TOLERANCE);

    try (LocalProcess local = LocalProcess.start(tmp, "--model", model.toString(), "--shards", "2",
        "--vision-workers", "0", "--node-heap", "256m", "--weights", "q8_0", "--coordinator-arg=--kv-cache-dtype=f32")) {
      String coordinator = local.coordinator();

      JsonNode actual = generate("generate", "--server", coordinator);

      assertThat(actual.get("token_ids")).as(local.output()).isEqualTo(expected.get("token_ids"));
      assertThat(actual.get("text")).isEqualTo(expected.get("text"));
      assertThat(topIds(actual)).isEqualTo(topIds(expected));
      assertThat(maxLogprobDifference(actual, expected)).isLessThanOrEqualTo(LOGPROB_TOLERANCE);
    }
  }

  @Test
  void anUnknownWeightFormatIsRefusedInOneSentenceBeforeAnyNodeStarts() {
    CliRun run = CliRun.of("local", "--model", Fixtures.stories260k().toString(), "--weights", "q4_k");

    assertThat(run.exitCode()).isEqualTo(2);
    assertThat(run.err()).contains("--weights must be one of mapped, stored, f16, bf16, q8_0, q4_0; got \"q4_k\"")
        .doesNotContain("[coordinator");
  }

  /** {@code owlery ARGS REQUEST} in this JVM, its JSON answer. */
  private static JsonNode generate(String... args) throws IOException {
    List<String> all = new ArrayList<>(List.of(args));
    all.addAll(REQUEST);
    CliRun run = CliRun.of(all.toArray(String[]::new));
    assertThat(run.exitCode()).as("owlery %s: %s", all, run.err()).isZero();
    return JSON.readTree(run.out());
  }

  /**
   * The largest difference between two answers' log-probabilities (chosen and top-5 entries of the
   * same id) at each position whose earlier tokens agree.
   */
  private static double maxLogprobDifference(JsonNode actual, JsonNode expected) {
    JsonNode want = expected.get("logprobs");
    JsonNode got = actual.get("logprobs");
    double max = 0;
    for (int i = 0; i < Math.min(want.size(), got.size()); i++) {
      for (int k = 0; k < 5; k++) {
        for (int l = 0; l < 5; l++) {
          JsonNode w = want.get(i).get("top").get(k);
          JsonNode g = got.get(i).get("top").get(l);
          if (g.get("token_id").equals(w.get("token_id"))) {
            max = Math.max(max, Math.abs(g.get("logprob").asDouble() - w.get("logprob").asDouble()));
          }
        }
      }
      if (!got.get(i).get("token_id").equals(want.get(i).get("token_id"))) {
        break; // the sequences part here: later positions see different prefixes
      }
    }
    return max;
  }

  /** Each position's top-5 token ids. */
  private static List<List<Integer>> topIds(JsonNode answer) {
    List<List<Integer>> ids = new ArrayList<>();
    for (JsonNode position : answer.get("logprobs")) {
      List<Integer> top = new ArrayList<>();
      position.get("top").forEach(entry -> top.add(entry.get("token_id").asInt()));
      ids.add(top);
    }
    return ids;
  }
}
