package dev.owlery.cli;

import dev.owlery.engine.config.GenerationConfig;
import dev.owlery.engine.sampling.SamplingParams;
import picocli.CommandLine.Option;

/** The sampling flags shared by the generating commands, resolved against the checkpoint's defaults. */
final class SamplingOptions {

  @Option(names = "--max-new-tokens", defaultValue = "64", description = "Most tokens to generate (default ${DEFAULT-VALUE}).")
  int maxNewTokens;

  @Option(names = "--temperature", description = "Sample at this temperature; 0 means greedy. Without it: the "
      + "checkpoint's generation_config.json decides (greedy unless it sets do_sample).")
  Float temperature;

  @Option(names = "--top-k", description = "Keep the k most likely tokens (0 disables; default from generation_config.json, else 50).")
  Integer topK;

  @Option(names = "--top-p", description = "Nucleus sampling mass in (0, 1] (default from generation_config.json, else 1).")
  Float topP;

  @Option(names = "--repetition-penalty", description = "HF repetition penalty, 1 disables (default from generation_config.json, else 1).")
  Float repetitionPenalty;

  @Option(names = "--seed", description = "Seed for sampling; the same seed gives the same tokens.")
  Long seed;

  /** The request's sampling parameters: flags first, then the checkpoint's generation_config.json. */
  SamplingParams resolve(GenerationConfig defaults) {
    return defaults.samplingParams(temperature, topK, topP, repetitionPenalty, seed != null ? seed : System.nanoTime());
  }
}
