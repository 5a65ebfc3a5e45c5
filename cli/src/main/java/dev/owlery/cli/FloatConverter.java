package dev.owlery.cli;

import java.util.Locale;
import picocli.CommandLine.TypeConversionException;

/**
 * Parses a float flag. {@code nan}, {@code inf} and {@code infinity} are accepted in any case (Java
 * only knows {@code NaN} and {@code Infinity}), so every spelling of a value out of range reaches
 * the same range check and gets the same message.
 */
final class FloatConverter {

  private FloatConverter() {}

  static Float parse(String text) {
    String value = text.strip();
    return switch (value.toLowerCase(Locale.ROOT)) {
      case "nan", "+nan", "-nan" -> Float.NaN;
      case "inf", "+inf", "infinity", "+infinity" -> Float.POSITIVE_INFINITY;
      case "-inf", "-infinity" -> Float.NEGATIVE_INFINITY;
      default -> {
        try {
          yield Float.parseFloat(value);
        } catch (NumberFormatException e) {
          throw new TypeConversionException("'%s' is not a number".formatted(text));
        }
      }
    };
  }
}
