package dev.owlery.coordinator.api;

import dev.owlery.coordinator.model.ServedModel;
import dev.owlery.coordinator.scheduler.SequenceRequest;
import dev.owlery.engine.model.GenerationLimits;
import dev.owlery.engine.sampling.SamplingParams;
import dev.owlery.engine.tokenizer.ChatTemplate;
import dev.owlery.engine.tokenizer.ImageToken;
import dev.owlery.proto.v1.AspectRatioPolicy;
import dev.owlery.proto.v1.GenerateRequest;
import dev.owlery.proto.v1.PromptTemplate;
import io.grpc.Status;
import java.util.List;
import java.util.function.LongSupplier;

/**
 * Checks every field of a request once, at the edge (STYLE.md §7), and resolves its defaults: a
 * failure is an {@link IllegalArgumentException} (INVALID_ARGUMENT) whose message names the field,
 * the limit and the value given, or NOT_FOUND for a model not served here. Applies the template and
 * tokenizes with the engine's tokenizer, so placeholder and context checks see the real ids.
 * Thread-safe.
 */
public final class RequestValidator {

  private final ServedModel model;
  private final ApiLimits limits;
  private final LongSupplier seeds;

  /**
   * @param seeds seeds requests that set none
   */
  public RequestValidator(ServedModel model, ApiLimits limits, LongSupplier seeds) {
    this.model = model;
    this.limits = limits;
    this.seeds = seeds;
  }

  /** The limits requests are checked against. */
  public ApiLimits limits() {
    return limits;
  }

  /** Checks {@code request} and resolves it. */
  public ValidatedRequest validate(GenerateRequest request) {
    checkModel(request.getModel());
    checkImages(request);
    int[] ids = promptTokenIds(request);
    int numPlaceholders = checkPlaceholders(request, ids);
    int numImageRows = numPlaceholders * model.numImageTokens();
    int numPromptRows = ids.length - numPlaceholders + numImageRows;
    GenerationLimits.checkPromptFits(numPromptRows, numImageRows, model.maxPositions(), model.name());
    int maxNewTokens = limits.defaultMaxNewTokens();
    if (request.hasMaxNewTokens()) {
      maxNewTokens = request.getMaxNewTokens();
      GenerationLimits.checkMaxNewTokens(maxNewTokens, model.maxPositions(), model.name());
    }
    SequenceRequest sequence = new SequenceRequest(ids, numPromptRows, numImageRows, sampling(request), maxNewTokens,
        stopTokenIds(request), stopStrings(request), request.getLogprobs(), numTopLogprobs(request));
    return new ValidatedRequest(sequence, request.getImagesList(), aspectRatioPolicy(request.getAspectRatioPolicy()));
  }

  /** Throws NOT_FOUND unless {@code name} is empty or the served model's name. */
  public void checkModel(String name) {
    if (!name.isEmpty() && !name.equals(model.name())) {
      throw Status.NOT_FOUND.withDescription(
          "model '%s' is not served here; this cluster serves [%s] (ListModels)".formatted(name, model.name()))
          .asRuntimeException();
    }
  }

  /** The engine's template for {@code template}; UNSPECIFIED is MPLUG_OWL2 (owlery.proto). */
  public static ChatTemplate chatTemplate(PromptTemplate template) {
    return switch (template) {
      case PROMPT_TEMPLATE_UNSPECIFIED, PROMPT_TEMPLATE_MPLUG_OWL2 -> ChatTemplate.MPLUG_OWL2;
      case PROMPT_TEMPLATE_NONE -> ChatTemplate.NONE;
      case UNRECOGNIZED -> throw new IllegalArgumentException(
          "template must be one of PROMPT_TEMPLATE_UNSPECIFIED, _MPLUG_OWL2, _NONE. Given: value " + template.getNumber());
    };
  }

  private static AspectRatioPolicy aspectRatioPolicy(AspectRatioPolicy policy) {
    return switch (policy) {
      case ASPECT_RATIO_POLICY_UNSPECIFIED, ASPECT_RATIO_POLICY_PAD -> AspectRatioPolicy.ASPECT_RATIO_POLICY_PAD;
      case ASPECT_RATIO_POLICY_RESIZE, ASPECT_RATIO_POLICY_NONE -> policy;
      case UNRECOGNIZED -> throw new IllegalArgumentException(
          "aspect_ratio_policy must be one of ASPECT_RATIO_POLICY_UNSPECIFIED, _PAD, _RESIZE, _NONE. Given: value "
              + policy.getNumber());
    };
  }

  private void checkImages(GenerateRequest request) {
    int numImages = request.getImagesCount();
    if (numImages > 0 && !model.supportsImages()) {
      throw new IllegalArgumentException("model %s is text-only (model_type %s): images must be empty. Given: %d image(s)"
          .formatted(model.name(), model.config().modelType(), numImages));
    }
    if (numImages > limits.maxImagesPerRequest()) {
      throw new IllegalArgumentException("images must hold at most %d images. Given: %d"
          .formatted(limits.maxImagesPerRequest(), numImages));
    }
    for (int i = 0; i < numImages; i++) {
      int size = request.getImages(i).getData().size();
      if (size == 0) {
        throw new IllegalArgumentException("images[%d].data is empty; send the encoded image file".formatted(i));
      }
      if (size > limits.maxImageBytes()) {
        throw new IllegalArgumentException("images[%d].data must be at most %d bytes. Given: %d bytes"
            .formatted(i, limits.maxImageBytes(), size));
      }
    }
  }

  /** The prompt's ids: templated and tokenized text, or the given ids (checked against the vocabulary). */
  private int[] promptTokenIds(GenerateRequest request) {
    return switch (request.getPromptCase()) {
      case PROMPT_TEXT -> {
        if (request.getPromptText().isEmpty()) {
          throw new IllegalArgumentException("prompt_text must not be empty");
        }
        String prompt;
        try {
          prompt = chatTemplate(request.getTemplate()).prompt(request.getPromptText(), request.getImagesCount());
        } catch (IllegalArgumentException e) {
          throw new IllegalArgumentException("prompt_text: " + e.getMessage() + " (template " + request.getTemplate()
              + ")", e);
        }
        yield model.tokenizer().tokenizeImagePrompt(prompt);
      }
      case PROMPT_TOKEN_IDS -> {
        if (request.getTemplate() == PromptTemplate.PROMPT_TEMPLATE_MPLUG_OWL2) {
          throw new IllegalArgumentException(
              "template must be PROMPT_TEMPLATE_UNSPECIFIED or PROMPT_TEMPLATE_NONE with prompt_token_ids. Given: "
                  + request.getTemplate());
        }
        chatTemplate(request.getTemplate());
        List<Integer> given = request.getPromptTokenIds().getTokenIdsList();
        if (given.isEmpty()) {
          throw new IllegalArgumentException("prompt_token_ids.token_ids must not be empty");
        }
        int[] ids = given.stream().mapToInt(Integer::intValue).toArray();
        for (int i = 0; i < ids.length; i++) {
          if (ids[i] != ImageToken.INDEX && (ids[i] < 0 || ids[i] >= model.vocabSize())) {
            throw new IllegalArgumentException(
                "prompt_token_ids.token_ids[%d] must be in [0, %d) or %d (an image placeholder). Given: %d"
                    .formatted(i, model.vocabSize(), ImageToken.INDEX, ids[i]));
          }
        }
        yield ids;
      }
      case PROMPT_NOT_SET -> throw new IllegalArgumentException(
          "prompt must be set: give prompt_text or prompt_token_ids");
    };
  }

  /** The number of placeholders, which must equal the number of images. */
  private static int checkPlaceholders(GenerateRequest request, int[] ids) {
    int numPlaceholders = 0;
    for (int id : ids) {
      numPlaceholders += id == ImageToken.INDEX ? 1 : 0;
    }
    if (numPlaceholders != request.getImagesCount()) {
      // Text prompts were checked by the template; ids are checked here.
      throw new IllegalArgumentException(
          "prompt_token_ids holds %d image placeholder(s) (%d) but %d image(s) were given; they must match"
              .formatted(numPlaceholders, ImageToken.INDEX, request.getImagesCount()));
    }
    return numPlaceholders;
  }

  /**
   * Sampling as the request says, the rest from the model's generation_config.json (as in-process);
   * min_p and the presence and frequency penalties default to 0 (off), which the engine's
   * GenerationConfig does not read.
   */
  private SamplingParams sampling(GenerateRequest request) {
    long seed = request.hasSeed() ? request.getSeed() : seeds.getAsLong();
    float minP = request.hasMinP() ? request.getMinP() : 0f;
    if (!(minP >= 0f && minP <= 1f)) {
      throw new IllegalArgumentException("min_p must be in [0, 1] (0 disables it). Given: " + minP);
    }
    float presence = penalty("presence_penalty", request.hasPresencePenalty(), request.getPresencePenalty());
    float frequency = penalty("frequency_penalty", request.hasFrequencyPenalty(), request.getFrequencyPenalty());
    return model.generationConfig().samplingParams(
        request.hasTemperature() ? request.getTemperature() : null,
        request.hasTopK() ? request.getTopK() : null,
        request.hasTopP() ? request.getTopP() : null,
        request.hasRepetitionPenalty() ? request.getRepetitionPenalty() : null,
        seed)
        .withMinP(minP)
        .withPenalties(presence, frequency);
  }

  /** A presence or frequency penalty: unset is 0, a set one must lie in [-2, 2] (vLLM's range). */
  private static float penalty(String field, boolean given, float value) {
    if (!given) {
      return 0f;
    }
    if (!(value >= -SamplingParams.MAX_PENALTY && value <= SamplingParams.MAX_PENALTY)) {
      throw new IllegalArgumentException("%s must be in [-%s, %s] (0 disables it). Given: %s"
          .formatted(field, SamplingParams.MAX_PENALTY, SamplingParams.MAX_PENALTY, value));
    }
    return value;
  }

  private int[] stopTokenIds(GenerateRequest request) {
    int[] ids = request.getStopTokenIdsList().stream().mapToInt(Integer::intValue).toArray();
    for (int i = 0; i < ids.length; i++) {
      if (ids[i] < 0 || ids[i] >= model.vocabSize()) {
        throw new IllegalArgumentException("stop_token_ids[%d] must be in [0, %d). Given: %d"
            .formatted(i, model.vocabSize(), ids[i]));
      }
    }
    return ids;
  }

  private static List<String> stopStrings(GenerateRequest request) {
    List<String> stops = request.getStopStringsList();
    if (stops.size() > ApiLimits.MAX_STOP_STRINGS) {
      throw new IllegalArgumentException("stop_strings must hold at most %d strings. Given: %d"
          .formatted(ApiLimits.MAX_STOP_STRINGS, stops.size()));
    }
    for (int i = 0; i < stops.size(); i++) {
      int length = stops.get(i).length();
      if (length < 1 || length > ApiLimits.MAX_STOP_STRING_LENGTH) {
        throw new IllegalArgumentException("stop_strings[%d] must be 1..%d characters long. Given: %d characters"
            .formatted(i, ApiLimits.MAX_STOP_STRING_LENGTH, length));
      }
    }
    return stops;
  }

  private static int numTopLogprobs(GenerateRequest request) {
    int numTop = request.getNumTopLogprobs();
    GenerationLimits.checkNumTopLogprobs(numTop);
    if (numTop > 0 && !request.getLogprobs()) {
      throw new IllegalArgumentException(
          "num_top_logprobs needs logprobs = true. Given: num_top_logprobs %d with logprobs false".formatted(numTop));
    }
    return numTop;
  }
}
