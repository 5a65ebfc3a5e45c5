package dev.owlery.coordinator.http;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.owlery.engine.testing.AllocationBudget;

/**
 * Any bytes sent as the body of {@code POST /v1/chat/completions} or {@code POST /v1/completions}
 * are either parsed into a request or refused with an {@link OpenAiRequestException} (answered 400
 * in OpenAI's error shape): never another exception, which the HTTP server would answer with a
 * closed connection, and never more memory than the budget. Corpus: {@code
 * testdata/fuzz/openai-request/} (docs/fuzzing.md).
 */
class OpenAiRequestParserFuzzTest {

  private static final long BUDGET_BYTES = 32L << 20;
  private static final OpenAiRequestParser PARSER = new OpenAiRequestParser(1 << 20, ImageUrls.NONE);

  @FuzzTest
  void parse(byte[] body) {
    AllocationBudget.enforce(BUDGET_BYTES, arena -> {
      try {
        PARSER.parseChat(body);
      } catch (OpenAiRequestException e) {
        // refused in one sentence: allowed
      }
      try {
        PARSER.parseCompletion(body);
      } catch (OpenAiRequestException e) {
        // refused in one sentence: allowed
      }
    });
  }
}
