package dev.owlery.cli;

import picocli.CommandLine.Option;

/**
 * Generated text as a terminal shows it: control characters (a bell, an escape sequence, a
 * carriage return; a random demo model makes plenty) become visible escapes such as {@code \u0007},
 * newlines and tabs stay. Only when standard output is a terminal (or {@code --terminal} says to
 * act as if it were); redirected output and JSON carry the text unchanged.
 */
final class TerminalText {

  @Option(names = "--terminal", hidden = true,
      description = "Escape control characters in the text as on a terminal, even when stdout is not one.")
  boolean forceTerminal;

  /** {@code text} as it should be printed on standard output. */
  String show(String text) {
    return forceTerminal || stdoutIsTerminal() ? escape(text) : text;
  }

  private static boolean stdoutIsTerminal() {
    // Since JDK 22 System.console() exists when redirected too; isTerminal() tells.
    return System.console() != null && System.console().isTerminal();
  }

  /** {@code text} with every control character but newline and tab written as {@code \\uXXXX}. */
  static String escape(String text) {
    StringBuilder out = null;
    for (int i = 0; i < text.length(); i++) {
      char c = text.charAt(i);
      boolean hidden = Character.isISOControl(c) && c != '\n' && c != '\t';
      if (hidden && out == null) {
        out = new StringBuilder(text.length() + 8).append(text, 0, i);
      }
      if (out != null) {
        out.append(hidden ? "\\u%04x".formatted((int) c) : String.valueOf(c));
      }
    }
    return out == null ? text : out.toString();
  }
}
