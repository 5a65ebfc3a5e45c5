package dev.owlery.engine.model;

/** Receives a generation as it happens, on the generating thread. */
@FunctionalInterface
public interface CompletionListener {

  /**
   * One generated token and the text it adds (possibly empty: a UTF-8 character spread over byte
   * pieces comes out whole with its last piece; stop tokens add no text).
   */
  void onToken(int tokenId, String textDelta);

  CompletionListener NONE = (tokenId, textDelta) -> {};
}
