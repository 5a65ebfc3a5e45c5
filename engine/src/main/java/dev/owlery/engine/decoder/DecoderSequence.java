package dev.owlery.engine.decoder;

import dev.owlery.engine.kv.KvCache;

/** One sequence's state in a {@link Decoder}: a KV cache per tensor-parallel rank, all of the same length. */
public final class DecoderSequence {

  private final KvCache[] caches;

  DecoderSequence(KvCache[] caches) {
    this.caches = caches.clone();
  }

  /** Positions processed so far; the next token's position. */
  public int length() {
    return caches[0].length();
  }

  /** Positions this sequence can hold. */
  public int capacity() {
    return caches[0].capacity();
  }

  /** Forgets every position, so the sequence can take a new prompt. */
  public void reset() {
    for (KvCache c : caches) {
      c.truncate(0);
    }
  }

  KvCache cache(int rank) {
    return caches[rank];
  }
}
