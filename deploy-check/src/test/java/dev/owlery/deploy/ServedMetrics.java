package dev.owlery.deploy;

import dev.owlery.coordinator.testing.ReadmeMetrics;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The meters the nodes serve, as the README's Metrics table lists them (coordinator's
 * CoordinatorMetricsTest holds that table to what a real cluster's /metrics serve), and the
 * series names PromQL expressions read.
 */
final class ServedMetrics {

  /** Series Prometheus itself makes for every target. */
  private static final Set<String> PROMETHEUS_SERIES = Set.of("up");

  private static final Pattern LABEL_MATCHERS = Pattern.compile("\\{[^}]*}");
  private static final Pattern RANGES = Pattern.compile("\\[[^]]*]");
  private static final Pattern GROUPING = Pattern.compile("\\b(by|without|on|ignoring|group_left|group_right)\\s*\\([^)]*\\)");
  private static final Pattern NUMBERS = Pattern.compile("(?<![\\w.])\\d+(\\.\\d+)?([eE][+-]?\\d+)?");
  private static final Pattern IDENTIFIER = Pattern.compile("[a-zA-Z_:][a-zA-Z0-9_:]*(\\s*\\()?");
  private static final Set<String> KEYWORDS = Set.of("and", "or", "unless", "bool", "offset", "inf", "nan");

  private final Set<String> meters;

  private ServedMetrics(Set<String> meters) {
    this.meters = meters;
  }

  /** The meters the README's Metrics table lists. */
  static ServedMetrics fromReadme() {
    return new ServedMetrics(ReadmeMetrics.meterNames(DeployFiles.root().resolve("README.md")));
  }

  /**
   * Whether some node serves the Prometheus series {@code name}: a listed Micrometer meter with
   * dots as underscores, plus the base unit or {@code _total}, histograms plus {@code _bucket},
   * {@code _count}, {@code _sum} or {@code _max} ({@link ReadmeMetrics#servesAs}, the rule CoordinatorMetricsTest applies); or a
   * series Prometheus makes itself.
   */
  boolean serves(String name) {
    if (PROMETHEUS_SERIES.contains(name)) {
      return true;
    }
    return meters.stream().anyMatch(meter -> ReadmeMetrics.servesAs(meter, name));
  }

  /**
   * The series names a PromQL expression reads: what is left once label matchers, ranges,
   * grouping clauses, numbers, keywords and function names are taken out.
   */
  static Set<String> seriesIn(String promql) {
    String rest = LABEL_MATCHERS.matcher(promql).replaceAll(" ");
    rest = RANGES.matcher(rest).replaceAll(" ");
    rest = GROUPING.matcher(rest).replaceAll(" ");
    rest = NUMBERS.matcher(rest).replaceAll(" ");
    Set<String> series = new TreeSet<>();
    Matcher m = IDENTIFIER.matcher(rest);
    while (m.find()) {
      boolean isFunctionCall = m.group(1) != null;
      String identifier = m.group().replaceFirst("\\s*\\($", "");
      if (!isFunctionCall && !KEYWORDS.contains(identifier.toLowerCase())) {
        series.add(identifier);
      }
    }
    return series;
  }
}
