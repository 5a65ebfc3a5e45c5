package dev.owlery.loadtest;

import java.util.Locale;

/** The {@code --output} flag of the {@code owlery} and {@code loadtest} commands: text for people, json for programs. */
public final class OutputFormat {

  private OutputFormat() {}

  /**
   * Whether {@code --output value} asks for JSON.
   *
   * @throws IllegalArgumentException for anything but text or json (any case)
   */
  public static boolean isJson(String value) {
    return switch (value.toLowerCase(Locale.ROOT)) {
      case "json" -> true;
      case "text" -> false;
      default -> throw new IllegalArgumentException("--output must be text or json, got '%s'".formatted(value));
    };
  }
}
