package dev.owlery.coordinator.http;

/**
 * One message of a chat conversation, as mPLUG-Owl2's template reads it.
 *
 * @param text the message's text, with one {@code <|image|>} placeholder where each of its images was
 */
public record ChatTurn(Role role, String text) {

  /** The two roles of {@code conv_mplug_owl2} (spec §7); it has no system turn. */
  public enum Role {
    USER,
    ASSISTANT
  }
}
