package dev.owlery.coordinator.testing;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The meters the README's Metrics table lists, and how a Micrometer meter appears in Prometheus:
 * the one reading of that table for the tests that hold it to a real node's /metrics
 * ({@code CoordinatorMetricsTest}) and to the dashboards and alerts of {@code deploy/}.
 */
public final class ReadmeMetrics {

  private static final Pattern METER = Pattern.compile("`(owlery\\.[a-z0-9_.]+)(\\{[a-z_,]*})?`");

  private ReadmeMetrics() {}

  /**
   * Every {@code owlery.*} name in backticks in the rows of {@code readme}'s Metrics table, tags dropped.
   *
   * @throws IllegalStateException when the README has no '## Metrics' section or it lists no meter
   */
  public static Set<String> meterNames(Path readme) {
    List<String> lines;
    try {
      lines = Files.readAllLines(readme);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    int section = lines.indexOf("## Metrics");
    if (section < 0) {
      throw new IllegalStateException(readme + " has no '## Metrics' section");
    }
    Set<String> names = new TreeSet<>();
    for (String line : lines.subList(section + 1, lines.size())) {
      if (line.startsWith("## ")) {
        break;
      }
      if (line.startsWith("|")) {
        Matcher m = METER.matcher(line);
        while (m.find()) {
          names.add(m.group(1));
        }
      }
    }
    if (names.isEmpty()) {
      throw new IllegalStateException(readme + "'s Metrics table lists no meters");
    }
    return names;
  }

  /**
   * Whether Micrometer's {@code meter} (dotted) is published as the Prometheus series {@code name}:
   * dots become underscores, the base unit or {@code _total} is appended, and histograms add
   * {@code _bucket}, {@code _count}, {@code _sum} and {@code _max}.
   */
  public static boolean servesAs(String meter, String name) {
    String base = meter.replace('.', '_');
    String series = name.replaceFirst("_(bucket|count|sum|max)$", "");
    return List.of(base, base + "_total", base + "_seconds", base + "_bytes").contains(series);
  }
}
