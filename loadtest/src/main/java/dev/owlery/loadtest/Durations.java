package dev.owlery.loadtest;

import java.math.BigDecimal;
import java.time.Duration;
import java.time.format.DateTimeParseException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import picocli.CommandLine.TypeConversionException;

/**
 * Durations as people write them on a command line: a number and a unit ({@code 500ms}, {@code 30s},
 * {@code 1.5m}, {@code 2h}, {@code 250us}) or ISO-8601 ({@code PT30S}). The one parser of the
 * {@code owlery} and {@code loadtest} commands' duration flags.
 */
public final class Durations {

  private static final Pattern WITH_UNIT = Pattern.compile("(\\d+(?:\\.\\d+)?)(us|ms|s|m|h)");

  private Durations() {}

  /**
   * {@code text} as a duration (zero allowed).
   *
   * @throws IllegalArgumentException when it is none of the forms, saying which forms are
   */
  public static Duration parse(String text) {
    String value = text.strip();
    Matcher m = WITH_UNIT.matcher(value);
    if (m.matches()) {
      long nanosPerUnit = switch (m.group(2)) {
        case "us" -> 1_000L;
        case "ms" -> 1_000_000L;
        case "s" -> 1_000_000_000L;
        case "m" -> 60_000_000_000L;
        case "h" -> 3_600_000_000_000L;
        default -> throw new IllegalStateException("unit " + m.group(2));
      };
      return Duration.ofNanos(new BigDecimal(m.group(1)).multiply(BigDecimal.valueOf(nanosPerUnit)).longValue());
    }
    try {
      return Duration.parse(value);
    } catch (DateTimeParseException e) {
      throw new IllegalArgumentException(
          "'%s' is not a duration; give a number and a unit (500ms, 5s, 2m, 1h) or ISO-8601 (PT5S)".formatted(text));
    }
  }

  /** {@link #parse(String)} as a picocli type converter, for {@code Duration} options. */
  public static Duration option(String text) {
    try {
      return parse(text);
    } catch (IllegalArgumentException e) {
      throw new TypeConversionException(e.getMessage());
    }
  }

  /**
   * A positive duration.
   *
   * @param what the option, for the error message
   * @throws IllegalArgumentException when {@code text} is none of the forms or not positive
   */
  public static Duration parse(String what, String text) {
    Duration value;
    try {
      value = parse(text);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("%s must be a duration such as 500ms, 30s, 2m or PT30S, got '%s'"
          .formatted(what, text));
    }
    if (value.isNegative() || value.isZero()) {
      throw new IllegalArgumentException("%s must be > 0, got '%s'".formatted(what, text));
    }
    return value;
  }
}
