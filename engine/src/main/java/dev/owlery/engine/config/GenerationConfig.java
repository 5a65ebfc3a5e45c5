package dev.owlery.engine.config;

import com.fasterxml.jackson.databind.JsonNode;
import dev.owlery.engine.sampling.SamplingParams;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Sampling defaults of a checkpoint's {@code generation_config.json} (spec §7): what a request
 * that does not say gets. Absent file or keys take transformers 4.31's defaults: greedy
 * ({@code do_sample} false), temperature 1, top_k 50, top_p 1, repetition penalty 1.
 */
public record GenerationConfig(boolean doSample, float temperature, int topK, float topP, float repetitionPenalty) {

  /** transformers 4.31's defaults, used when the checkpoint has no generation_config.json. */
  public static GenerationConfig defaults() {
    return new GenerationConfig(false, 1f, 50, 1f, 1f);
  }

  /**
   * A request's sampling parameters: what it sets, the rest from this config. A temperature
   * given turns sampling on when it is > 0 and means greedy when it is 0; without one, this
   * config's {@code do_sample} decides. Each null argument means "not given by the request".
   */
  public SamplingParams samplingParams(Float temperature, Integer topK, Float topP, Float repetitionPenalty, long seed) {
    if (temperature != null && !(temperature >= 0 && Float.isFinite(temperature))) {
      throw new IllegalArgumentException("temperature must be a finite value >= 0 (0 = greedy), got " + temperature);
    }
    boolean sample = temperature != null ? temperature > 0 : doSample;
    return new SamplingParams(
        sample,
        temperature != null && temperature > 0 ? temperature : this.temperature,
        topK != null ? topK : this.topK,
        topP != null ? topP : this.topP,
        repetitionPenalty != null ? repetitionPenalty : this.repetitionPenalty,
        seed);
  }

  /** Reads {@code dir/generation_config.json}, or the defaults when the file is absent. */
  public static GenerationConfig load(Path dir) {
    Path file = dir.resolve("generation_config.json");
    if (!Files.exists(file)) {
      return defaults();
    }
    return JsonConfigFile.read(file, GenerationConfig::parse);
  }

  /** Parses a generation_config.json tree; absent keys take {@link #defaults()}. */
  public static GenerationConfig parse(JsonNode root) {
    GenerationConfig d = defaults();
    return new GenerationConfig(
        root.path("do_sample").asBoolean(d.doSample()),
        (float) root.path("temperature").asDouble(d.temperature()),
        root.path("top_k").asInt(d.topK()),
        (float) root.path("top_p").asDouble(d.topP()),
        (float) root.path("repetition_penalty").asDouble(d.repetitionPenalty()));
  }
}
