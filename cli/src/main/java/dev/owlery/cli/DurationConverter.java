package dev.owlery.cli;

import java.math.BigDecimal;
import java.time.Duration;
import java.time.format.DateTimeParseException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import picocli.CommandLine.TypeConversionException;

/** Parses a duration flag: a number with a unit ({@code 500ms}, {@code 5s}, {@code 1.5m}, {@code 2h}) or ISO-8601 ({@code PT5S}). */
final class DurationConverter {

  private static final Pattern WITH_UNIT = Pattern.compile("(\\d+(?:\\.\\d+)?)(ms|s|m|h)");

  private DurationConverter() {}

  static Duration parse(String text) {
    String value = text.strip();
    Matcher m = WITH_UNIT.matcher(value);
    if (m.matches()) {
      BigDecimal amount = new BigDecimal(m.group(1));
      BigDecimal nanosPerUnit = BigDecimal.valueOf(switch (m.group(2)) {
        case "ms" -> 1_000_000L;
        case "s" -> 1_000_000_000L;
        case "m" -> 60_000_000_000L;
        case "h" -> 3_600_000_000_000L;
        default -> throw new IllegalStateException("unit " + m.group(2));
      });
      return Duration.ofNanos(amount.multiply(nanosPerUnit).longValue());
    }
    if (!value.startsWith("P") && !value.startsWith("p")) {
      throw notADuration(text);
    }
    try {
      return Duration.parse(value);
    } catch (DateTimeParseException e) {
      throw notADuration(text);
    }
  }

  private static TypeConversionException notADuration(String text) {
    return new TypeConversionException(
        "'%s' is not a duration; give a number and a unit (500ms, 5s, 2m, 1h) or ISO-8601 (PT5S)".formatted(text));
  }
}
