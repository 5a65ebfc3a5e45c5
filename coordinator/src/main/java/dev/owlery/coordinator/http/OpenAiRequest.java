package dev.owlery.coordinator.http;

import dev.owlery.proto.v1.GenerateRequest;

/**
 * An OpenAI request body, parsed: the {@code Generate} call it makes and how to answer it.
 *
 * @param kind which endpoint it came to, so which response shape it gets
 * @param generate the request for the coordinator's {@code Generate}, not yet validated there
 * @param stream answer with server-sent events, one chunk per generated delta
 * @param includeUsage with {@code stream}: a last chunk with the usage ({@code stream_options.include_usage})
 * @param returnTokenIds add the prompt's and the answer's token ids (vLLM's {@code return_token_ids})
 */
public record OpenAiRequest(Kind kind, GenerateRequest generate, boolean stream, boolean includeUsage,
    boolean returnTokenIds) {

  /** The two generating endpoints. */
  public enum Kind {
    /** {@code POST /v1/chat/completions}: messages through mPLUG-Owl2's conversation template. */
    CHAT,
    /** {@code POST /v1/completions}: the prompt as given. */
    COMPLETION
  }
}
