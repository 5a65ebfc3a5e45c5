package dev.owlery.coordinator.scheduler;

import java.util.List;

/**
 * Holds back streamed text that could be the start of a stop string, so no stop string (or part
 * of one) is ever sent: {@link #push} returns what is safe to send, cutting the text where a stop
 * string begins. One per sequence, one thread.
 */
final class StopStrings {

  private final List<String> stopStrings;
  private final StringBuilder held = new StringBuilder();
  private String matched;

  StopStrings(List<String> stopStrings) {
    this.stopStrings = List.copyOf(stopStrings);
  }

  /** The stop string that matched, or null. */
  String matched() {
    return matched;
  }

  /**
   * Adds {@code text}; returns the text that can be sent now. When a stop string appears, returns
   * the text before it and {@link #matched()} names it.
   */
  String push(String text) {
    if (stopStrings.isEmpty()) {
      return text;
    }
    held.append(text);
    int earliest = -1;
    for (String stop : stopStrings) {
      int at = held.indexOf(stop);
      if (at >= 0 && (earliest < 0 || at < earliest)) {
        earliest = at;
        matched = stop;
      }
    }
    if (earliest >= 0) {
      String before = held.substring(0, earliest);
      held.setLength(0);
      return before;
    }
    int keep = longestSuffixStartingAStopString();
    String safe = held.substring(0, held.length() - keep);
    held.delete(0, held.length() - keep);
    return safe;
  }

  /** The text still held back (the generation ended without a match). */
  String flush() {
    String rest = held.toString();
    held.setLength(0);
    return rest;
  }

  private int longestSuffixStartingAStopString() {
    int longest = 0;
    for (String stop : stopStrings) {
      for (int length = Math.min(stop.length() - 1, held.length()); length > longest; length--) {
        if (held.lastIndexOf(stop.substring(0, length)) == held.length() - length) {
          longest = length;
          break;
        }
      }
    }
    return longest;
  }
}
