package dev.owlery.engine.decoder;

/** Which input rows of a forward step get logits. */
public enum LogitRows {
  /** Every input row, e.g. to dump prompt logits: output [numTokens, vocabSize]. */
  ALL,
  /** Only the last input row, what sampling needs: output [vocabSize]. */
  LAST
}
