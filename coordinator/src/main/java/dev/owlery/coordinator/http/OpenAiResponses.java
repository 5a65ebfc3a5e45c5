package dev.owlery.coordinator.http;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.owlery.proto.v1.FinishReason;
import dev.owlery.proto.v1.GenerateDelta;
import dev.owlery.proto.v1.GenerateFinish;
import dev.owlery.proto.v1.TokenLogprob;
import dev.owlery.proto.v1.TopLogprob;
import dev.owlery.proto.v1.Usage;
import java.nio.charset.StandardCharsets;
import java.util.HexFormat;
import java.util.List;

/**
 * The response bodies of one generating request, in OpenAI's shapes: {@code chat.completion} and
 * {@code chat.completion.chunk} for chat, {@code text_completion} for completions (whole or streamed).
 * Every body of one request carries the same id, creation time and model. Log-probabilities are
 * natural logs of the unmodified distribution; a token's text is its SentencePiece piece with {@code ▁}
 * as a space, and a byte piece ({@code <0x0A>}) as that byte. {@code prompt_tokens} counts the
 * decoder positions of the prompt, each image's visual rows included.
 */
final class OpenAiResponses {

  private static final JsonNodeFactory JSON = JsonNodeFactory.instance;

  private final OpenAiRequest request;
  private final String id;
  private final long created;
  private final String model;

  OpenAiResponses(OpenAiRequest request, String id, long created, String model) {
    this.request = request;
    this.id = id;
    this.created = created;
    this.model = model;
  }

  private boolean chat() {
    return request.kind() == OpenAiRequest.Kind.CHAT;
  }

  /** The whole answer of a request that did not stream. */
  ObjectNode completion(List<GenerateDelta> deltas, GenerateFinish finish) {
    ObjectNode body = head(chat() ? "chat.completion" : "text_completion");
    ObjectNode choice = body.putArray("choices").addObject().put("index", 0);
    StringBuilder text = new StringBuilder();
    deltas.forEach(delta -> text.append(delta.getText()));
    if (chat()) {
      choice.putObject("message").put("role", "assistant").put("content", text.toString());
    } else {
      choice.put("text", text.toString());
    }
    putLogprobs(choice, deltas);
    choice.put("finish_reason", finishReason(finish.getFinishReason()));
    if (request.returnTokenIds()) {
      ArrayNode ids = choice.putArray("token_ids");
      deltas.forEach(delta -> delta.getTokenIdsList().forEach(ids::add));
      ArrayNode promptIds = body.putArray("prompt_token_ids");
      finish.getPromptTokenIdsList().forEach(promptIds::add);
    }
    body.set("usage", usage(finish.getUsage()));
    return body;
  }

  /** The first chunk of a streamed chat answer: the assistant's role, no text yet. */
  ObjectNode roleChunk() {
    ObjectNode chunk = chunk();
    ObjectNode choice = chunk.withArray("choices").addObject().put("index", 0);
    choice.putObject("delta").put("role", "assistant").put("content", "");
    choice.putNull("logprobs");
    choice.putNull("finish_reason");
    return chunk;
  }

  /** The chunk carrying one generated delta. */
  ObjectNode deltaChunk(GenerateDelta delta) {
    ObjectNode chunk = chunk();
    ObjectNode choice = chunk.withArray("choices").addObject().put("index", 0);
    if (chat()) {
      choice.putObject("delta").put("content", delta.getText());
    } else {
      choice.put("text", delta.getText());
    }
    putLogprobs(choice, List.of(delta));
    choice.putNull("finish_reason");
    if (request.returnTokenIds()) {
      ArrayNode ids = choice.putArray("token_ids");
      delta.getTokenIdsList().forEach(ids::add);
    }
    return chunk;
  }

  /** The chunk saying why the answer ended (no text). */
  ObjectNode finishChunk(GenerateFinish finish) {
    ObjectNode chunk = chunk();
    ObjectNode choice = chunk.withArray("choices").addObject().put("index", 0);
    if (chat()) {
      choice.putObject("delta");
    } else {
      choice.put("text", "");
    }
    choice.putNull("logprobs");
    choice.put("finish_reason", finishReason(finish.getFinishReason()));
    return chunk;
  }

  /** With {@code stream_options.include_usage}: the last chunk, no choices, the usage. */
  ObjectNode usageChunk(GenerateFinish finish) {
    ObjectNode chunk = head(chat() ? "chat.completion.chunk" : "text_completion");
    chunk.putArray("choices");
    chunk.set("usage", usage(finish.getUsage()));
    return chunk;
  }

  private ObjectNode chunk() {
    ObjectNode chunk = head(chat() ? "chat.completion.chunk" : "text_completion");
    chunk.putArray("choices");
    if (request.includeUsage()) {
      chunk.putNull("usage"); // as OpenAI: null on every chunk but the last
    }
    return chunk;
  }

  private ObjectNode head(String object) {
    return JSON.objectNode().put("id", id).put("object", object).put("created", created).put("model", model)
        .putNull("system_fingerprint");
  }

  private void putLogprobs(ObjectNode choice, List<GenerateDelta> deltas) {
    if (!request.generate().getLogprobs()) {
      choice.putNull("logprobs");
      return;
    }
    ObjectNode logprobs = choice.putObject("logprobs");
    if (chat()) {
      ArrayNode content = logprobs.putArray("content");
      for (GenerateDelta delta : deltas) {
        for (TokenLogprob token : delta.getLogprobsList()) {
          ObjectNode entry = tokenEntry(token.getToken(), token.getLogprob());
          ArrayNode top = entry.putArray("top_logprobs");
          for (TopLogprob alternative : token.getTopLogprobsList()) {
            top.add(tokenEntry(alternative.getToken(), alternative.getLogprob()));
          }
          content.add(entry);
        }
      }
      return;
    }
    ArrayNode tokens = logprobs.putArray("tokens");
    ArrayNode tokenLogprobs = logprobs.putArray("token_logprobs");
    ArrayNode topLogprobs = logprobs.putArray("top_logprobs");
    ArrayNode textOffsets = logprobs.putArray("text_offset");
    int offset = 0;
    for (GenerateDelta delta : deltas) {
      for (TokenLogprob token : delta.getLogprobsList()) {
        String text = tokenText(token.getToken());
        tokens.add(text);
        tokenLogprobs.add(token.getLogprob());
        ObjectNode top = topLogprobs.addObject();
        token.getTopLogprobsList().forEach(alternative -> top.put(tokenText(alternative.getToken()),
            alternative.getLogprob()));
        textOffsets.add(offset);
        offset += text.length();
      }
    }
  }

  private static ObjectNode tokenEntry(String piece, float logprob) {
    ObjectNode entry = JSON.objectNode().put("token", tokenText(piece)).put("logprob", logprob);
    ArrayNode bytes = entry.putArray("bytes");
    for (byte b : tokenBytes(piece)) {
      bytes.add(b & 0xff);
    }
    return entry;
  }

  /** A piece's text: {@code ▁} is a space; a byte piece {@code <0xNN>} is that byte (U+FFFD unless ASCII). */
  static String tokenText(String piece) {
    return new String(tokenBytes(piece), StandardCharsets.UTF_8);
  }

  private static byte[] tokenBytes(String piece) {
    if (piece.length() == 6 && piece.startsWith("<0x") && piece.endsWith(">")) {
      try {
        return new byte[] {(byte) HexFormat.fromHexDigits(piece, 3, 5)};
      } catch (IllegalArgumentException e) {
        // not a byte piece after all: its text as it is
      }
    }
    return piece.replace('\u2581', ' ').getBytes(StandardCharsets.UTF_8);
  }

  private static ObjectNode usage(Usage usage) {
    return JSON.objectNode().put("prompt_tokens", usage.getNumPromptTokens())
        .put("completion_tokens", usage.getNumCompletionTokens())
        .put("total_tokens", usage.getNumPromptTokens() + usage.getNumCompletionTokens());
  }

  /** OpenAI's two reasons: {@code length} for a limit reached, {@code stop} for a stop token or string. */
  static String finishReason(FinishReason reason) {
    return switch (reason) {
      case FINISH_REASON_MAX_NEW_TOKENS, FINISH_REASON_MAX_POSITIONS -> "length";
      case FINISH_REASON_EOS_TOKEN, FINISH_REASON_STOP_TOKEN, FINISH_REASON_STOP_STRING -> "stop";
      case FINISH_REASON_UNSPECIFIED, UNRECOGNIZED -> throw new IllegalStateException(
          "a finished generation must say why it finished. Given: " + reason);
    };
  }
}
