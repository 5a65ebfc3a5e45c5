package dev.owlery.loadtest;

import java.time.Duration;
import java.time.format.DateTimeParseException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Durations as people write them on a command line: {@code 500ms}, {@code 30s}, {@code 2m}, or ISO-8601 ({@code PT30S}). */
public final class Durations {

  private static final Pattern SIMPLE = Pattern.compile("(\\d+(?:\\.\\d+)?)(us|ms|s|m|h)");

  private Durations() {}

  /**
   * @param what the option, for the error message
   * @throws IllegalArgumentException when {@code text} is none of the forms or not positive
   */
  public static Duration parse(String what, String text) {
    Matcher m = SIMPLE.matcher(text.trim());
    Duration value;
    if (m.matches()) {
      double amount = Double.parseDouble(m.group(1));
      double nanosPerUnit = switch (m.group(2)) {
        case "us" -> 1e3;
        case "ms" -> 1e6;
        case "s" -> 1e9;
        case "m" -> 60e9;
        default -> 3600e9;
      };
      value = Duration.ofNanos(Math.round(amount * nanosPerUnit));
    } else {
      try {
        value = Duration.parse(text.trim());
      } catch (DateTimeParseException e) {
        throw new IllegalArgumentException("%s must be a duration such as 500ms, 30s, 2m or PT30S, got '%s'"
            .formatted(what, text));
      }
    }
    if (value.isNegative() || value.isZero()) {
      throw new IllegalArgumentException("%s must be > 0, got '%s'".formatted(what, text));
    }
    return value;
  }
}
