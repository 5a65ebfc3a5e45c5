package dev.owlery.engine.kernel;

/** Which keys a query of an attention call sees. */
public enum AttentionMask {
  /**
   * The queries are the last {@code numQueries} of the {@code numKeys} positions, in order: query i
   * sits at position {@code numKeys - numQueries + i} and sees keys {@code [0, that position]} (the
   * decoder, spec §4).
   */
  CAUSAL,
  /** Every query sees every key (the vision tower and the abstractor, whose masks are all zero). */
  NONE
}
