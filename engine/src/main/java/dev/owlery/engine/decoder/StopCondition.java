package dev.owlery.engine.decoder;

/**
 * When a generation ends: after {@code maxNewTokens} tokens, or on a token of {@code stopTokenIds}
 * once at least {@code minNewTokens} were generated (before that the stop tokens cannot be chosen,
 * HF {@code min_new_tokens}).
 */
public record StopCondition(int maxNewTokens, int minNewTokens, int[] stopTokenIds) {

  public StopCondition {
    if (maxNewTokens < 1) {
      throw new IllegalArgumentException("max_new_tokens must be >= 1, got " + maxNewTokens);
    }
    if (minNewTokens < 0 || minNewTokens > maxNewTokens) {
      throw new IllegalArgumentException("min_new_tokens must be in [0, max_new_tokens=%d], got %d"
          .formatted(maxNewTokens, minNewTokens));
    }
    stopTokenIds = stopTokenIds.clone();
  }

  /** Stop on {@code eosTokenId} or after {@code maxNewTokens}. */
  public static StopCondition eosOrLength(int eosTokenId, int maxNewTokens) {
    return new StopCondition(maxNewTokens, 0, new int[] {eosTokenId});
  }

  @Override
  public int[] stopTokenIds() {
    return stopTokenIds.clone();
  }

  public boolean isStopToken(int tokenId) {
    for (int id : stopTokenIds) {
      if (id == tokenId) {
        return true;
      }
    }
    return false;
  }

  int[] stopTokenIdsView() {
    return stopTokenIds;
  }
}
