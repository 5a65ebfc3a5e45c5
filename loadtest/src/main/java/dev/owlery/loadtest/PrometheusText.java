package dev.owlery.loadtest;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A reader of Prometheus' text exposition format (version 0.0.4, which the nodes' {@code /metrics}
 * serve): one sample a line, {@code name{label="value",...} value [timestamp]}; {@code #} lines
 * (HELP, TYPE, comments) and blank lines carry no sample. Label values may hold the escapes
 * {@code \\}, {@code \"} and {@code \n}; values may be {@code +Inf}, {@code -Inf} or {@code NaN}.
 */
final class PrometheusText {

  /** One sample: a series (name and labels, in the order given) and its value. */
  record Sample(String name, Map<String, String> labels, double value) {
    Sample {
      labels = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(labels));
    }
  }

  private final String line;
  private final int lineNumber;
  private int at;

  private PrometheusText(String line, int lineNumber) {
    this.line = line;
    this.lineNumber = lineNumber;
  }

  /**
   * The samples of a scrape, in order.
   *
   * @throws IllegalArgumentException naming the first line that is not a sample, comment or blank
   */
  static List<Sample> parse(String text) {
    List<Sample> samples = new ArrayList<>();
    int number = 0;
    for (String line : text.split("\n", -1)) {
      number++;
      String trimmed = line.strip();
      if (trimmed.isEmpty() || trimmed.startsWith("#")) {
        continue;
      }
      samples.add(new PrometheusText(trimmed, number).sample());
    }
    return samples;
  }

  private Sample sample() {
    String name = name();
    Map<String, String> labels = new LinkedHashMap<>();
    skipSpaces();
    if (peek() == '{') {
      at++;
      skipSpaces();
      while (peek() != '}') {
        String label = name();
        skipSpaces();
        expect('=');
        skipSpaces();
        labels.put(label, quoted());
        skipSpaces();
        if (peek() == ',') {
          at++;
          skipSpaces();
        } else if (peek() != '}') {
          throw bad("',' or '}' after the value of label " + label);
        }
      }
      at++;
    }
    skipSpaces();
    int start = at;
    while (at < line.length() && !Character.isWhitespace(line.charAt(at))) {
      at++;
    }
    double value = value(line.substring(start, at));
    // What may follow is the sample's timestamp (milliseconds), which a scrape's time supersedes.
    return new Sample(name, labels, value);
  }

  private String name() {
    int start = at;
    while (at < line.length() && isNameChar(line.charAt(at), at == start)) {
      at++;
    }
    if (at == start) {
      throw bad("a metric or label name");
    }
    return line.substring(start, at);
  }

  private static boolean isNameChar(char c, boolean first) {
    return c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (!first && c >= '0' && c <= '9');
  }

  private String quoted() {
    expect('"');
    StringBuilder value = new StringBuilder();
    while (true) {
      if (at >= line.length()) {
        throw bad("the closing '\"' of a label value");
      }
      char c = line.charAt(at++);
      if (c == '"') {
        return value.toString();
      }
      if (c == '\\' && at < line.length()) {
        char escaped = line.charAt(at++);
        value.append(switch (escaped) {
          case 'n' -> '\n';
          case '\\', '"' -> escaped;
          default -> throw bad("\\\\, \\\" or \\n after a backslash");
        });
      } else {
        value.append(c);
      }
    }
  }

  private double value(String text) {
    return switch (text) {
      case "+Inf", "Inf" -> Double.POSITIVE_INFINITY;
      case "-Inf" -> Double.NEGATIVE_INFINITY;
      case "NaN" -> Double.NaN;
      case "" -> throw bad("a value");
      default -> {
        try {
          yield Double.parseDouble(text);
        } catch (NumberFormatException e) {
          throw bad("a number, +Inf, -Inf or NaN as the value");
        }
      }
    };
  }

  private char peek() {
    if (at >= line.length()) {
      throw bad("more: the line ends early");
    }
    return line.charAt(at);
  }

  private void expect(char c) {
    if (peek() != c) {
      throw bad("'" + c + "'");
    }
    at++;
  }

  private void skipSpaces() {
    while (at < line.length() && (line.charAt(at) == ' ' || line.charAt(at) == '\t')) {
      at++;
    }
  }

  private IllegalArgumentException bad(String expected) {
    return new IllegalArgumentException("line %d of the Prometheus text, expected %s at column %d: %s"
        .formatted(lineNumber, expected, at + 1, line));
  }
}
