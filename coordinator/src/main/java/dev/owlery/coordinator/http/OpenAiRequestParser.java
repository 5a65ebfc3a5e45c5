package dev.owlery.coordinator.http;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.google.protobuf.ByteString;
import dev.owlery.engine.tokenizer.ImageToken;
import dev.owlery.proto.v1.GenerateRequest;
import dev.owlery.proto.v1.Image;
import dev.owlery.proto.v1.PromptTemplate;
import dev.owlery.proto.v1.PromptTokenIds;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * Reads the JSON body of {@code POST /v1/chat/completions} and {@code POST /v1/completions} into the
 * {@code Generate} request it stands for. Only the shape is checked here (types, ranges OpenAI defines,
 * fields this server does not support); the values are validated by the coordinator's {@code
 * RequestValidator} as for gRPC callers. Images come inline as {@code data:} URIs (base64 PNG or JPEG);
 * http(s) URLs are fetched only where {@link ImageUrls} allows them. The only exception thrown is
 * {@link OpenAiRequestException}. Thread-safe.
 */
public final class OpenAiRequestParser {

  /** OpenAI's bound on top_logprobs (and on the legacy logprobs). */
  static final int MAX_TOP_LOGPROBS = 20;

  private static final Set<String> COMMON_FIELDS = Set.of("model", "stream", "stream_options", "max_tokens",
      "temperature", "top_p", "stop", "seed", "n", "frequency_penalty", "presence_penalty", "user",
      // vLLM's extensions, which Owlery's gRPC API has too
      "top_k", "min_p", "repetition_penalty", "return_token_ids");
  private static final Set<String> CHAT_FIELDS = union(COMMON_FIELDS,
      Set.of("messages", "max_completion_tokens", "logprobs", "top_logprobs"));
  private static final Set<String> COMPLETION_FIELDS = union(COMMON_FIELDS, Set.of("prompt", "logprobs", "echo",
      "best_of"));
  private static final Set<String> IMAGE_MEDIA_TYPES = Set.of("image/png", "image/jpeg");

  private final ObjectMapper mapper;
  private final ImageUrls imageUrls;

  /**
   * @param maxBodyBytes the largest body the server takes; strings up to this length are read (an image's base64)
   * @param imageUrls the http(s) image URLs fetched ({@link ImageUrls#NONE}: none)
   */
  public OpenAiRequestParser(int maxBodyBytes, ImageUrls imageUrls) {
    this.imageUrls = imageUrls;
    JsonFactory factory = JsonFactory.builder()
        .streamReadConstraints(StreamReadConstraints.builder().maxStringLength(maxBodyBytes).maxNestingDepth(64).build())
        .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
        .build();
    this.mapper = new ObjectMapper(factory).enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);
  }

  /** The chat completion request {@code body} holds. */
  public OpenAiRequest parseChat(byte[] body) {
    JsonNode root = readObject(body, CHAT_FIELDS);
    GenerateRequest.Builder generate = common(root).setTemplate(PromptTemplate.PROMPT_TEMPLATE_NONE);
    List<ChatTurn> turns = new ArrayList<>();
    JsonNode messages = required(root, "messages");
    if (!messages.isArray()) {
      throw new OpenAiRequestException("messages", "messages must be an array of {\"role\", \"content\"} objects. "
          + "Given: " + typeOf(messages));
    }
    for (int i = 0; i < messages.size(); i++) {
      turns.add(turn(messages.get(i), "messages[%d]".formatted(i), generate, imageUrls));
    }
    generate.setPromptText(ChatConversation.prompt(turns));
    boolean logprobs = bool(root, "logprobs");
    int numTop = integer(root, "top_logprobs", 0, MAX_TOP_LOGPROBS, 0);
    if (root.has("top_logprobs") && !logprobs) {
      throw new OpenAiRequestException("top_logprobs", "top_logprobs needs logprobs: true");
    }
    generate.setLogprobs(logprobs).setNumTopLogprobs(numTop);
    if (root.has("max_completion_tokens")) {
      int max = integer(root, "max_completion_tokens", 1, Integer.MAX_VALUE, 0);
      if (generate.hasMaxNewTokens() && generate.getMaxNewTokens() != max) {
        throw new OpenAiRequestException("max_completion_tokens", "max_tokens (%d) and max_completion_tokens (%d) "
            .formatted(generate.getMaxNewTokens(), max) + "differ; give one of them");
      }
      generate.setMaxNewTokens(max);
    }
    return request(OpenAiRequest.Kind.CHAT, root, generate);
  }

  /** The (legacy) completion request {@code body} holds. */
  public OpenAiRequest parseCompletion(byte[] body) {
    JsonNode root = readObject(body, COMPLETION_FIELDS);
    GenerateRequest.Builder generate = common(root).setTemplate(PromptTemplate.PROMPT_TEMPLATE_NONE);
    JsonNode prompt = required(root, "prompt");
    if (prompt.isArray() && prompt.size() == 1 && prompt.get(0).isTextual()) {
      prompt = prompt.get(0);
    }
    if (prompt.isTextual()) {
      String text = prompt.textValue();
      checkNoPlaceholder(text, "prompt");
      generate.setPromptText(text);
    } else if (prompt.isArray() && !prompt.isEmpty() && prompt.get(0).isNumber()) {
      PromptTokenIds.Builder ids = PromptTokenIds.newBuilder();
      for (int i = 0; i < prompt.size(); i++) {
        ids.addTokenIds(intValue(prompt.get(i), "prompt[%d]".formatted(i), 0, Integer.MAX_VALUE));
      }
      generate.setPromptTokenIds(ids);
    } else {
      throw new OpenAiRequestException("prompt", "prompt must be a string or an array of token ids (one prompt: n "
          + "and batches are not served). Given: " + typeOf(prompt));
    }
    if (bool(root, "echo")) {
      throw new OpenAiRequestException("echo", "echo is not supported; send echo: false or leave it out");
    }
    integer(root, "best_of", 1, 1, 1);
    int numTop = integer(root, "logprobs", 0, MAX_TOP_LOGPROBS, -1);
    if (numTop >= 0) {
      generate.setLogprobs(true).setNumTopLogprobs(numTop);
    }
    return request(OpenAiRequest.Kind.COMPLETION, root, generate);
  }

  private OpenAiRequest request(OpenAiRequest.Kind kind, JsonNode root, GenerateRequest.Builder generate) {
    boolean stream = bool(root, "stream");
    boolean includeUsage = false;
    JsonNode options = root.get("stream_options");
    if (options != null && !options.isNull()) {
      if (!stream) {
        throw new OpenAiRequestException("stream_options", "stream_options is only allowed with stream: true");
      }
      if (!options.isObject()) {
        throw new OpenAiRequestException("stream_options", "stream_options must be an object. Given: "
            + typeOf(options));
      }
      checkFields(options, Set.of("include_usage"), "stream_options.");
      includeUsage = bool(options, "include_usage", "stream_options.include_usage");
    }
    return new OpenAiRequest(kind, generate.build(), stream, includeUsage, bool(root, "return_token_ids"));
  }

  /** The fields both endpoints share. */
  private static GenerateRequest.Builder common(JsonNode root) {
    GenerateRequest.Builder generate = GenerateRequest.newBuilder();
    JsonNode model = root.get("model");
    if (model != null && !model.isNull()) {
      generate.setModel(text(model, "model"));
    }
    if (has(root, "max_tokens")) {
      generate.setMaxNewTokens(integer(root, "max_tokens", 1, Integer.MAX_VALUE, 0));
    }
    if (has(root, "temperature")) {
      generate.setTemperature(number(root, "temperature", 0, 2));
    }
    if (has(root, "top_p")) {
      generate.setTopP(number(root, "top_p", 0, 1));
    }
    if (has(root, "top_k")) {
      generate.setTopK(integer(root, "top_k", -1, Integer.MAX_VALUE, 0));
    }
    if (has(root, "min_p")) {
      generate.setMinP(number(root, "min_p", 0, 1));
    }
    if (has(root, "repetition_penalty")) {
      generate.setRepetitionPenalty(number(root, "repetition_penalty", 0, Float.MAX_VALUE));
    }
    if (has(root, "frequency_penalty")) {
      generate.setFrequencyPenalty(number(root, "frequency_penalty", -2, 2));
    }
    if (has(root, "presence_penalty")) {
      generate.setPresencePenalty(number(root, "presence_penalty", -2, 2));
    }
    if (has(root, "seed")) {
      JsonNode seed = root.get("seed");
      if (!seed.isIntegralNumber() || !seed.canConvertToLong()) {
        throw new OpenAiRequestException("seed", "seed must be an integer in the 64-bit range. Given: "
            + describe(seed));
      }
      generate.setSeed(seed.longValue());
    }
    integer(root, "n", 1, 1, 1);
    JsonNode stop = root.get("stop");
    if (stop != null && !stop.isNull()) {
      if (stop.isTextual()) {
        generate.addStopStrings(stop.textValue());
      } else if (stop.isArray()) {
        for (int i = 0; i < stop.size(); i++) {
          generate.addStopStrings(text(stop.get(i), "stop[%d]".formatted(i)));
        }
      } else {
        throw new OpenAiRequestException("stop", "stop must be a string or an array of strings. Given: "
            + typeOf(stop));
      }
    }
    JsonNode user = root.get("user");
    if (user != null && !user.isNull()) {
      text(user, "user");
    }
    return generate;
  }

  /** One message: its role and its text, with a placeholder for (and the image added for) each image part. */
  private static ChatTurn turn(JsonNode message, String path, GenerateRequest.Builder generate, ImageUrls imageUrls) {
    if (!message.isObject()) {
      throw new OpenAiRequestException(path, path + " must be an object {\"role\", \"content\"}. Given: "
          + typeOf(message));
    }
    checkFields(message, Set.of("role", "content", "name"), path + ".");
    String role = text(required(message, "role", path + ".role"), path + ".role");
    ChatTurn.Role turnRole = switch (role) {
      case "user" -> ChatTurn.Role.USER;
      case "assistant" -> ChatTurn.Role.ASSISTANT;
      case "system", "developer" -> throw new OpenAiRequestException(path + ".role", "mPLUG-Owl2's conversation "
          + "template has no system turn (conv_mplug_owl2 never emits one); put the instructions in the first "
          + "user message. Given: role '" + role + "' at " + path);
      default -> throw new OpenAiRequestException(path + ".role", path + ".role must be 'user' or 'assistant'. Given: '"
          + role + "'");
    };
    JsonNode content = required(message, "content", path + ".content");
    String contentPath = path + ".content";
    if (content.isTextual()) {
      checkNoPlaceholder(content.textValue(), contentPath);
      return new ChatTurn(turnRole, content.textValue());
    }
    if (!content.isArray()) {
      throw new OpenAiRequestException(contentPath, contentPath + " must be a string or an array of parts. Given: "
          + typeOf(content));
    }
    StringBuilder text = new StringBuilder();
    boolean lastWasText = false;
    for (int i = 0; i < content.size(); i++) {
      JsonNode part = content.get(i);
      String partPath = "%s[%d]".formatted(contentPath, i);
      if (!part.isObject()) {
        throw new OpenAiRequestException(partPath, partPath + " must be an object {\"type\", ...}. Given: "
            + typeOf(part));
      }
      String type = text(required(part, "type", partPath + ".type"), partPath + ".type");
      switch (type) {
        case "text" -> {
          checkFields(part, Set.of("type", "text"), partPath + ".");
          String partText = text(required(part, "text", partPath + ".text"), partPath + ".text");
          checkNoPlaceholder(partText, partPath + ".text");
          // Consecutive text parts read as lines; an image and the text after it join as in the official prompts.
          text.append(lastWasText ? "\n" : "").append(partText);
          lastWasText = true;
        }
        case "image_url" -> {
          if (turnRole != ChatTurn.Role.USER) {
            throw new OpenAiRequestException(partPath, "only user messages may hold images; " + partPath
                + " is an image in an assistant message");
          }
          checkFields(part, Set.of("type", "image_url"), partPath + ".");
          generate.addImages(Image.newBuilder().setData(ByteString.copyFrom(image(part.get("image_url"), partPath
              + ".image_url", imageUrls))));
          text.append(ImageToken.PLACEHOLDER);
          lastWasText = false;
        }
        default -> throw new OpenAiRequestException(partPath + ".type", partPath + ".type must be 'text' or "
            + "'image_url'. Given: '" + type + "'");
      }
    }
    return new ChatTurn(turnRole, text.toString());
  }

  /** The bytes of an {@code image_url} part's {@code data:} URI, or of its http(s) URL where that is allowed. */
  private static byte[] image(JsonNode imageUrl, String path, ImageUrls imageUrls) {
    if (imageUrl == null || !imageUrl.isObject()) {
      throw new OpenAiRequestException(path, path + " must be an object {\"url\": \"data:image/png;base64,...\"}. "
          + "Given: " + typeOf(imageUrl));
    }
    checkFields(imageUrl, Set.of("url", "detail"), path + ".");
    String url = text(required(imageUrl, "url", path + ".url"), path + ".url");
    String urlPath = path + ".url";
    String scheme = url.substring(0, Math.max(0, url.indexOf(':'))).toLowerCase(Locale.ROOT);
    if (scheme.equals("http") || scheme.equals("https")) {
      return imageUrls.fetch(url, urlPath);
    }
    int comma = url.indexOf(',');
    if (!scheme.equals("data") || comma < 0) {
      throw new OpenAiRequestException(urlPath, urlPath + " must be a data: URI, data:image/png;base64,... or "
          + "data:image/jpeg;base64,...");
    }
    String header = url.substring(5, comma);
    int semicolon = header.indexOf(';');
    String mediaType = (semicolon < 0 ? header : header.substring(0, semicolon)).strip().toLowerCase(Locale.ROOT);
    if (!IMAGE_MEDIA_TYPES.contains(mediaType)) {
      throw new OpenAiRequestException(urlPath, urlPath + " must hold a PNG or JPEG image (data:image/png or "
          + "data:image/jpeg). Given: media type '" + abbreviate(mediaType) + "'");
    }
    if (semicolon < 0 || !header.substring(semicolon + 1).strip().equalsIgnoreCase("base64")) {
      throw new OpenAiRequestException(urlPath, urlPath + " must be base64-encoded (data:" + mediaType
          + ";base64,...)");
    }
    try {
      return Base64.getDecoder().decode(url.substring(comma + 1));
    } catch (IllegalArgumentException e) {
      throw new OpenAiRequestException(urlPath, urlPath + " is not valid base64: " + e.getMessage());
    }
  }

  private JsonNode readObject(byte[] body, Set<String> fields) {
    JsonNode root;
    try {
      root = mapper.readTree(body);
    } catch (JacksonException e) {
      throw new OpenAiRequestException(null, "the request body is not valid JSON: " + e.getOriginalMessage()
          + " (at line %d, column %d)".formatted(e.getLocation() == null ? 0 : e.getLocation().getLineNr(),
              e.getLocation() == null ? 0 : e.getLocation().getColumnNr()));
    } catch (IOException e) {
      throw new OpenAiRequestException(null, "the request body could not be read: " + e.getMessage());
    }
    if (root == null || !root.isObject()) {
      throw new OpenAiRequestException(null, "the request body must be a JSON object. Given: " + typeOf(root));
    }
    checkFields(root, fields, "");
    return root;
  }

  /** Refuses a field this server does not know or support, instead of ignoring what the caller asked for. */
  private static void checkFields(JsonNode object, Set<String> known, String prefix) {
    for (Iterator<String> names = object.fieldNames(); names.hasNext(); ) {
      String name = names.next();
      if (!known.contains(name)) {
        throw new OpenAiRequestException(prefix + name, "'%s%s' is not supported by this server; supported: %s"
            .formatted(prefix, abbreviate(name), known.stream().sorted().toList()));
      }
    }
  }

  private static void checkNoPlaceholder(String text, String path) {
    if (text.contains(ImageToken.PLACEHOLDER)) {
      throw new OpenAiRequestException(path, path + " holds the text " + ImageToken.PLACEHOLDER
          + ", which is the model's image placeholder; send images as image_url parts");
    }
  }

  private static boolean has(JsonNode object, String field) {
    JsonNode value = object.get(field);
    return value != null && !value.isNull();
  }

  private static JsonNode required(JsonNode object, String field) {
    return required(object, field, field);
  }

  private static JsonNode required(JsonNode object, String field, String path) {
    JsonNode value = object.get(field);
    if (value == null || value.isNull()) {
      throw new OpenAiRequestException(path, path + " is required");
    }
    return value;
  }

  private static String text(JsonNode value, String path) {
    if (!value.isTextual()) {
      throw new OpenAiRequestException(path, path + " must be a string. Given: " + typeOf(value));
    }
    return value.textValue();
  }

  private static boolean bool(JsonNode object, String field) {
    return bool(object, field, field);
  }

  private static boolean bool(JsonNode object, String field, String path) {
    JsonNode value = object.get(field);
    if (value == null || value.isNull()) {
      return false;
    }
    if (!value.isBoolean()) {
      throw new OpenAiRequestException(path, path + " must be true or false. Given: " + describe(value));
    }
    return value.booleanValue();
  }

  /** An integer field in [min, max], or {@code absent} when missing or null. */
  private static int integer(JsonNode object, String field, int min, int max, int absent) {
    JsonNode value = object.get(field);
    return value == null || value.isNull() ? absent : intValue(value, field, min, max);
  }

  private static int intValue(JsonNode value, String path, int min, int max) {
    if (!value.isIntegralNumber() || !value.canConvertToInt() || value.intValue() < min || value.intValue() > max) {
      throw new OpenAiRequestException(path, (min == max ? "%s must be %d".formatted(path, min)
          : "%s must be an integer in [%d, %d]".formatted(path, min, max)) + ". Given: " + describe(value));
    }
    return value.intValue();
  }

  private static float number(JsonNode object, String field, float min, float max) {
    JsonNode value = object.get(field);
    if (!value.isNumber() || !(value.doubleValue() >= min && value.doubleValue() <= max)) {
      throw new OpenAiRequestException(field, "%s must be a number in [%s, %s]. Given: %s"
          .formatted(field, min, max, describe(value)));
    }
    return value.floatValue();
  }

  /** A value for a message: numbers and booleans as written, anything else by its type. */
  private static String describe(JsonNode value) {
    return value.isNumber() || value.isBoolean() ? abbreviate(value.asText()) : typeOf(value);
  }

  private static String typeOf(JsonNode value) {
    if (value == null || value.isNull() || value.isMissingNode()) {
      return "null";
    }
    if (value.isTextual()) {
      return "a string";
    }
    return value.isObject() ? "an object" : value.isArray() ? "an array" : value.isBoolean() ? "a boolean"
        : value.isNumber() ? "a number" : value.getNodeType().toString().toLowerCase(Locale.ROOT);
  }

  /** Caller-given text in a message, cut to 40 characters. */
  private static String abbreviate(String text) {
    return text.length() <= 40 ? text : text.substring(0, 40) + "...";
  }

  private static Set<String> union(Set<String> a, Set<String> b) {
    Set<String> all = new HashSet<>(a);
    all.addAll(b);
    return Set.copyOf(all);
  }
}
