package dev.owlery.engine.tokenizer;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.owlery.engine.testing.AllocationBudget;

/**
 * Any bytes read as a {@code tokenizer.model} either fail with an {@link IllegalArgumentException}
 * or give a tokenizer that encodes and decodes text, within a small allocation budget. Corpus:
 * {@code testdata/fuzz/sentencepiece/} (docs/fuzzing.md).
 */
class SentencePieceTokenizerFuzzTest {

  private static final long BUDGET_BYTES = 64L << 20;
  /** Spaces, digits, a special-token text, accents, CJK and an emoji (a surrogate pair). */
  private static final String TEXT = "Hello  world 12345 <s></s> déjà vu 你好 \uD83E\uDD89\n";

  @FuzzTest
  void parse(byte[] bytes) {
    AllocationBudget.enforce(BUDGET_BYTES, arena -> {
      SentencePieceTokenizer tokenizer;
      try {
        tokenizer = SentencePieceTokenizer.parse("fuzz.model", bytes);
      } catch (IllegalArgumentException refused) {
        return; // the documented failure; a tokenizer that loaded must then encode and decode
      }
      use(tokenizer);
    });
  }

  private static void use(SentencePieceTokenizer tokenizer) {
    int[] ids = tokenizer.encode(TEXT, tokenizer.bosId() >= 0);
    for (int id : ids) {
      tokenizer.checkId(id);
    }
    tokenizer.decode(ids);
    int[] everyPiece = new int[tokenizer.vocabSize()];
    for (int id = 0; id < everyPiece.length; id++) {
      everyPiece[id] = id;
    }
    tokenizer.decode(everyPiece);
    if (tokenizer.bosId() >= 0 && tokenizer.eosId() >= 0) {
      new LlamaTokenizer(tokenizer).tokenizeImagePrompt("USER: <|image|>" + TEXT + "ASSISTANT:");
    }
  }
}
