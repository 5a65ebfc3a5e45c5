package dev.owlery.cli;

import dev.owlery.engine.config.GenerationConfig;
import dev.owlery.engine.sampling.SamplingParams;
import dev.owlery.proto.v1.GenerateRequest;
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

  @Option(names = "--min-p", description = "Keep tokens at least this fraction as likely as the most likely one, in [0, 1] "
      + "(0 disables, the default; ignored when greedy).")
  Float minP;

  @Option(names = "--repetition-penalty", description = "HF repetition penalty, 1 disables (default from generation_config.json, else 1).")
  Float repetitionPenalty;

  @Option(names = "--presence-penalty", description = "Subtracted from the logit of every token generated so far, in "
      + "[-2, 2] (0 disables, the default).")
  Float presencePenalty;

  @Option(names = "--frequency-penalty", description = "Subtracted from a token's logit once per time it was generated "
      + "so far, in [-2, 2] (0 disables, the default).")
  Float frequencyPenalty;

  @Option(names = "--seed", description = "Seed for sampling; the same seed gives the same tokens.")
  Long seed;

  /**
   * The request's sampling parameters: flags first, then the checkpoint's generation_config.json;
   * min-p and the presence and frequency penalties are off unless given (as on the server).
   */
  SamplingParams resolve(GenerationConfig defaults) {
    return defaults.samplingParams(temperature, topK, topP, repetitionPenalty, seed != null ? seed : System.nanoTime())
        .withMinP(minP != null ? minP : 0f)
        .withPenalties(presencePenalty != null ? presencePenalty : 0f, frequencyPenalty != null ? frequencyPenalty : 0f);
  }

  /** Sets the flags given on {@code request}; the server resolves the rest as {@link #resolve} does. */
  GenerateRequest.Builder applyTo(GenerateRequest.Builder request) {
    request.setMaxNewTokens(maxNewTokens);
    if (temperature != null) {
      request.setTemperature(temperature);
    }
    if (topK != null) {
      request.setTopK(topK);
    }
    if (topP != null) {
      request.setTopP(topP);
    }
    if (minP != null) {
      request.setMinP(minP);
    }
    if (repetitionPenalty != null) {
      request.setRepetitionPenalty(repetitionPenalty);
    }
    if (presencePenalty != null) {
      request.setPresencePenalty(presencePenalty);
    }
    if (frequencyPenalty != null) {
      request.setFrequencyPenalty(frequencyPenalty);
    }
    if (seed != null) {
      request.setSeed(seed);
    }
    return request;
  }
}
