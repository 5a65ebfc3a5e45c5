package dev.owlery.loadtest;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.Function;

/**
 * Two load-test runs ({@code --output json} reports) side by side: for each level both ran, each
 * metric's value in A and B, the ratio B / A and a verdict. A run's noise is the 95% bootstrap
 * interval of the metric ({@value #RESAMPLES} resamples, seeded): latencies and the error rate
 * resample the level's requests (a request's inter-token gaps stay together), throughputs resample
 * the level's {@value #WINDOWS} equal time windows (batch means). B is better or worse when its
 * interval and A's do not overlap, the same when they do, and too_few when either run has fewer
 * than {@value #MIN_SAMPLES} samples for it.
 */
public final class RunComparison {

  static final int RESAMPLES = 1000;
  static final int WINDOWS = 10;
  static final int MIN_SAMPLES = 5;

  private static final ObjectMapper JSON = new ObjectMapper();

  /** Whether a higher value of a metric is better (throughput) or worse (latency, errors). */
  enum Better {
    HIGHER,
    LOWER
  }

  /** B against A, from the two runs' intervals. */
  public enum Verdict {
    BETTER,
    WORSE,
    SAME,
    TOO_FEW;

    String label() {
      return name().toLowerCase(Locale.ROOT);
    }
  }

  /** One request of a recorded level; {@code ttftMs} NaN when no token came. */
  record Request(double sentMs, double ttftMs, double tpotMs, double[] itlMs, double e2eMs, int tokens, boolean ok) {}

  /** One level of a report: its name (e.g. "concurrency 4"), wall time and requests. */
  record Level(String name, double wallSeconds, List<Request> requests) {}

  /** A metric's value in one run and the 95% bootstrap interval around it, over {@code numSamples} samples. */
  record Estimate(double value, double low, double high, int numSamples) {}

  /** One metric of one level in both runs. */
  record Row(String level, String metric, Estimate a, Estimate b, Verdict verdict) {
    double ratio() {
      return a.value() != 0 ? b.value() / a.value() : Double.NaN;
    }
  }

  /** How a metric is computed from a level, and which way is better. */
  private record Metric(String name, Better better, Function<Level, Estimate> estimate) {}

  private static final List<Metric> METRICS = List.of(
      latency("ttft_p50_ms", 50, r -> r.ok() && !Double.isNaN(r.ttftMs()) ? new double[] {r.ttftMs()} : null),
      latency("ttft_p99_ms", 99, r -> r.ok() && !Double.isNaN(r.ttftMs()) ? new double[] {r.ttftMs()} : null),
      latency("tpot_p50_ms", 50, r -> r.ok() && r.tokens() > 1 ? new double[] {r.tpotMs()} : null),
      latency("itl_p50_ms", 50, r -> r.ok() && r.itlMs().length > 0 ? r.itlMs() : null),
      latency("itl_p99_ms", 99, r -> r.ok() && r.itlMs().length > 0 ? r.itlMs() : null),
      latency("e2e_p50_ms", 50, r -> r.ok() ? new double[] {r.e2eMs()} : null),
      latency("e2e_p99_ms", 99, r -> r.ok() ? new double[] {r.e2eMs()} : null),
      new Metric("tokens_per_second", Better.HIGHER, level -> windowRate(level, RunComparison::tokenTimes)),
      new Metric("request_throughput", Better.HIGHER, level -> windowRate(level, RunComparison::okEndTimes)),
      new Metric("error_rate", Better.LOWER, level -> bootstrap(level.requests(),
          sample -> sample.isEmpty() ? Double.NaN
              : (double) sample.stream().filter(r -> !r.ok()).count() / sample.size())));

  private final String nameA;
  private final String nameB;
  private final List<Row> rows;
  private final List<String> onlyInA;
  private final List<String> onlyInB;

  private RunComparison(String nameA, String nameB, List<Row> rows, List<String> onlyInA, List<String> onlyInB) {
    this.nameA = nameA;
    this.nameB = nameB;
    this.rows = List.copyOf(rows);
    this.onlyInA = List.copyOf(onlyInA);
    this.onlyInB = List.copyOf(onlyInB);
  }

  /**
   * Compares the reports in files {@code a} and {@code b}.
   *
   * @throws IllegalArgumentException when a file is not a loadtest JSON report, naming it
   * @throws UncheckedIOException when a file cannot be read
   */
  public static RunComparison of(Path a, Path b) {
    return of(a.toString(), read(a), b.toString(), read(b));
  }

  static RunComparison of(String nameA, List<Level> a, String nameB, List<Level> b) {
    Map<String, Level> inB = new LinkedHashMap<>();
    b.forEach(level -> inB.put(level.name(), level));
    List<Row> rows = new ArrayList<>();
    List<String> onlyInA = new ArrayList<>();
    for (Level levelA : a) {
      Level levelB = inB.remove(levelA.name());
      if (levelB == null) {
        onlyInA.add(levelA.name());
        continue;
      }
      for (Metric metric : METRICS) {
        Estimate ea = metric.estimate().apply(levelA);
        Estimate eb = metric.estimate().apply(levelB);
        rows.add(new Row(levelA.name(), metric.name(), ea, eb, verdict(ea, eb, metric.better())));
      }
    }
    return new RunComparison(nameA, nameB, rows, onlyInA, List.copyOf(inB.keySet()));
  }

  static Verdict verdict(Estimate a, Estimate b, Better better) {
    if (a.numSamples() < MIN_SAMPLES || b.numSamples() < MIN_SAMPLES || Double.isNaN(a.value())
        || Double.isNaN(b.value())) {
      return Verdict.TOO_FEW;
    }
    boolean higher = b.low() > a.high();
    boolean lower = b.high() < a.low();
    if (!higher && !lower) {
      return Verdict.SAME;
    }
    return higher == (better == Better.HIGHER) ? Verdict.BETTER : Verdict.WORSE;
  }

  public List<Row> rows() {
    return rows;
  }

  /** Whether any metric of B is worse than A's beyond the noise. */
  public boolean anyWorse() {
    return rows.stream().anyMatch(r -> r.verdict() == Verdict.WORSE);
  }

  /** A header naming A and B, then one line per level and metric. */
  public String table() {
    StringBuilder out = new StringBuilder("A: %s%nB: %s%n".formatted(nameA, nameB));
    String row = "%-16s %-18s %12s %12s %7s  %s%n";
    out.append(row.formatted("level", "metric", "A", "B", "B/A", "verdict"));
    for (Row r : rows) {
      out.append(row.formatted(r.level(), r.metric(), fixed(r.a().value()), fixed(r.b().value()),
          Double.isNaN(r.ratio()) ? "-" : String.format(Locale.ROOT, "%.2f", r.ratio()), r.verdict().label()));
    }
    onlyInA.forEach(level -> out.append("only in A: ").append(level).append('\n'));
    onlyInB.forEach(level -> out.append("only in B: ").append(level).append('\n'));
    out.append("better/worse: the 95%% bootstrap intervals of A and B do not overlap; same: they do; too_few: under %d "
        .formatted(MIN_SAMPLES)).append("samples (docs/loadtest.md)\n");
    return out.toString();
  }

  /**
   * {@code {"a", "b", "rows": [{"level", "metric", "a", "a_low", "a_high", "a_samples", "b", ...,
   * "ratio", "verdict"}], "only_in_a", "only_in_b"}}; unknown values are null.
   */
  public String json() {
    ObjectNode root = JSON.createObjectNode().put("a", nameA).put("b", nameB);
    ArrayNode list = root.putArray("rows");
    for (Row r : rows) {
      ObjectNode node = list.addObject().put("level", r.level()).put("metric", r.metric());
      putEstimate(node, "a", r.a());
      putEstimate(node, "b", r.b());
      putNumber(node, "ratio", r.ratio());
      node.put("verdict", r.verdict().label());
    }
    onlyInA.forEach(root.putArray("only_in_a")::add);
    onlyInB.forEach(root.putArray("only_in_b")::add);
    return root.toPrettyString();
  }

  private static void putEstimate(ObjectNode node, String run, Estimate e) {
    putNumber(node, run, e.value());
    putNumber(node, run + "_low", e.low());
    putNumber(node, run + "_high", e.high());
    node.put(run + "_samples", e.numSamples());
  }

  private static void putNumber(ObjectNode node, String name, double value) {
    if (Double.isFinite(value)) {
      node.put(name, value);
    } else {
      node.putNull(name);
    }
  }

  private static String fixed(double value) {
    return Double.isNaN(value) ? "-" : String.format(Locale.ROOT, "%.3f", value);
  }

  private static Metric latency(String name, double percentile, Function<Request, double[]> values) {
    return new Metric(name, Better.LOWER, level -> {
      List<double[]> perRequest = level.requests().stream().map(values).filter(v -> v != null).toList();
      Estimate e = bootstrap(perRequest,
          sample -> percentile(sample.stream().flatMapToDouble(Arrays::stream).toArray(), percentile));
      int numValues = perRequest.stream().mapToInt(v -> v.length).sum();
      return new Estimate(e.value(), e.low(), e.high(), numValues);
    });
  }

  /** The statistic of {@code units} and its 95% interval over {@link #RESAMPLES} resamples with replacement. */
  private static <T> Estimate bootstrap(List<T> units, Function<List<T>, Double> statistic) {
    if (units.isEmpty()) {
      return new Estimate(Double.NaN, Double.NaN, Double.NaN, 0);
    }
    double value = statistic.apply(units);
    SplittableRandom random = new SplittableRandom(0);
    double[] resampled = new double[RESAMPLES];
    List<T> sample = new ArrayList<>(units.size());
    for (int b = 0; b < RESAMPLES; b++) {
      sample.clear();
      for (int i = 0; i < units.size(); i++) {
        sample.add(units.get(random.nextInt(units.size())));
      }
      resampled[b] = statistic.apply(sample);
    }
    double[] finite = Arrays.stream(resampled).filter(v -> !Double.isNaN(v)).toArray();
    return new Estimate(value, percentile(finite, 2.5), percentile(finite, 97.5), units.size());
  }

  /**
   * A rate (events per second) as the mean of the rates in {@link #WINDOWS} equal windows of the
   * level's wall time, with the windows resampled for its interval.
   */
  private static Estimate windowRate(Level level, Function<Level, List<double[]>> events) {
    if (!(level.wallSeconds() > 0)) {
      return new Estimate(Double.NaN, Double.NaN, Double.NaN, 0);
    }
    double window = level.wallSeconds() * 1000 / WINDOWS;
    double[] counts = new double[WINDOWS];
    for (double[] event : events.apply(level)) {
      counts[(int) Math.max(0, Math.min(WINDOWS - 1, Math.floor(event[0] / window)))] += event[1];
    }
    List<Double> rates = Arrays.stream(counts).map(c -> c / (window / 1000)).boxed().toList();
    Estimate e = bootstrap(rates, sample -> sample.stream().mapToDouble(Double::doubleValue).average()
        .orElse(Double.NaN));
    return new Estimate(e.value(), e.low(), e.high(), WINDOWS);
  }

  /** Each delta's arrival (ms from the level's start) and its share of the request's tokens. */
  private static List<double[]> tokenTimes(Level level) {
    List<double[]> events = new ArrayList<>();
    for (Request r : level.requests()) {
      if (Double.isNaN(r.ttftMs())) {
        continue;
      }
      double perDelta = (double) r.tokens() / (r.itlMs().length + 1);
      double at = r.sentMs() + r.ttftMs();
      events.add(new double[] {at, perDelta});
      for (double gap : r.itlMs()) {
        at += gap;
        events.add(new double[] {at, perDelta});
      }
    }
    return events;
  }

  /** The end of each successful request (ms from the level's start). */
  private static List<double[]> okEndTimes(Level level) {
    return level.requests().stream().filter(Request::ok).map(r -> new double[] {r.sentMs() + r.e2eMs(), 1}).toList();
  }

  /** Linear interpolation between the nearest ranks, as {@link Latency} does; NaN for no values. */
  static double percentile(double[] values, double p) {
    if (values.length == 0) {
      return Double.NaN;
    }
    double[] sorted = values.clone();
    Arrays.sort(sorted);
    double rank = p / 100 * (sorted.length - 1);
    int below = (int) Math.floor(rank);
    int above = Math.min(below + 1, sorted.length - 1);
    return sorted[below] + (rank - below) * (sorted[above] - sorted[below]);
  }

  private static List<Level> read(Path file) {
    JsonNode root;
    try {
      root = JSON.readTree(file.toFile());
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new IllegalArgumentException("%s is not JSON (%s); compare reads the output of loadtest --output json"
          .formatted(file, e.getOriginalMessage()));
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + file + ": " + e.getMessage(), e);
    }
    return levels(file.toString(), root);
  }

  static List<Level> levels(String file, JsonNode root) {
    JsonNode levels = root == null ? null : root.get("levels");
    if (levels == null || !levels.isArray()) {
      throw new IllegalArgumentException("%s has no \"levels\": compare reads the output of loadtest --output json"
          .formatted(file));
    }
    List<Level> out = new ArrayList<>();
    for (int i = 0; i < levels.size(); i++) {
      JsonNode level = levels.get(i);
      String name = level.has("concurrency") ? new Load.Concurrency(level.get("concurrency").asInt()).describe()
          : level.has("request_rate") ? new Load.Rate(level.get("request_rate").asDouble(),
              level.path("burstiness").asDouble(1)).describe()
          : null;
      JsonNode requests = level.get("requests");
      if (name == null || requests == null || !level.has("wall_seconds")) {
        throw new IllegalArgumentException("%s: level %d lacks concurrency or request_rate, wall_seconds or requests"
            .formatted(file, i));
      }
      List<Request> list = new ArrayList<>();
      for (JsonNode r : requests) {
        JsonNode ttft = r.get("ttft_ms");
        double[] itl = new double[r.path("itl_ms").size()];
        for (int k = 0; k < itl.length; k++) {
          itl[k] = r.get("itl_ms").get(k).asDouble();
        }
        list.add(new Request(r.path("sent_ms").asDouble(), ttft == null || ttft.isNull() ? Double.NaN : ttft.asDouble(),
            r.path("tpot_ms").asDouble(), itl, r.path("e2e_ms").asDouble(), r.path("tokens").asInt(),
            "OK".equals(r.path("status").asText())));
      }
      out.add(new Level(name, level.get("wall_seconds").asDouble(), list));
    }
    return out;
  }
}
