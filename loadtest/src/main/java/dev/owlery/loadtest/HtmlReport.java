package dev.owlery.loadtest;

import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.function.ToDoubleFunction;

/**
 * A load test as one self-contained HTML page: the run's parameters, a table of its levels, and
 * inline SVG plots (latency CDFs, TTFT against load, output throughput, KV usage and the queue over
 * time). Nothing is fetched when the page opens: no scripts, styles or fonts from elsewhere; its one
 * script only lets a click on a legend entry hide or show that series.
 */
final class HtmlReport {

  /** Points a CDF is drawn through at most (evenly spaced ranks); more add nothing visible. */
  static final int CDF_POINTS = 400;

  private static final String STYLE = """
      body { font-family: sans-serif; margin: 24px; color: #222; }
      h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; }
      table { border-collapse: collapse; font-size: 13px; }
      td, th { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
      th { background: #f3f3f3; } td.text { text-align: left; font-family: monospace; }
      .plots { display: flex; flex-wrap: wrap; gap: 12px; }
      svg.plot { border: 1px solid #ddd; background: #fff; font-size: 11px; }
      svg .title { font-size: 13px; font-weight: bold; }
      svg .grid { stroke: #eee; } svg .axis { stroke: #444; }
      svg path.series { fill: none; stroke-width: 1.8; }
      svg .marker { stroke: #d62728; stroke-dasharray: 4 3; stroke-width: 1.5; }
      svg .marker-label { fill: #d62728; }
      svg .legend { cursor: pointer; } svg .series-group.hidden path, svg .series-group.hidden circle { display: none; }
      """;

  private static final String SCRIPT = """
      for (const group of document.querySelectorAll('svg .series-group')) {
        group.querySelector('.legend').addEventListener('click', () => group.classList.toggle('hidden'));
      }
      """;

  private HtmlReport() {}

  /**
   * The page of {@code report}.
   *
   * @param arguments the command line's arguments, shown as the run's parameters
   * @param finished when the run ended
   */
  static String render(LoadReport report, List<String> arguments, Instant finished) {
    StringBuilder page = new StringBuilder();
    page.append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
        .append("<title>Owlery load test, ").append(escape(report.target())).append("</title>\n")
        .append("<style>\n").append(STYLE).append("</style>\n</head>\n<body>\n")
        .append("<h1>Owlery load test</h1>\n");
    parameters(page, report, arguments, finished);
    levels(page, report);
    List<LevelResult> levels = report.levels();
    page.append("<h2>Latencies</h2>\n<div class=\"plots\">\n")
        .append(cdf("ttft-cdf", "TTFT CDF", "time to first token (ms)", levels, l -> l.requests().stream()
            .filter(r -> r.ok() && r.ttftNanos() >= 0).mapToLong(RequestResult::ttftNanos).toArray()))
        .append(cdf("itl-cdf", "ITL CDF", "inter-token latency (ms)", levels, l -> l.requests().stream()
            .filter(RequestResult::ok).flatMapToLong(r -> Arrays.stream(r.itlNanos())).toArray()))
        .append(cdf("e2e-cdf", "E2E CDF", "end-to-end latency (ms)", levels, l -> l.requests().stream()
            .filter(RequestResult::ok).mapToLong(RequestResult::e2eNanos).toArray()))
        .append(ttftVersusLoad(levels))
        .append("</div>\n<h2>Over time</h2>\n<div class=\"plots\">\n")
        .append(marked(throughput(levels), report.chaos()))
        .append(marked(serverSeries("kv-usage", "KV cache usage", "KV blocks used (%)", levels, s -> 100 * s.kvUsage()),
            report.chaos()))
        .append(marked(serverSeries("queue", "Requests waiting", "waiting", levels, ServerSample::waiting),
            report.chaos()))
        .append("</div>\n<script>\n").append(SCRIPT).append("</script>\n</body>\n</html>\n");
    return page.toString();
  }

  private static void parameters(StringBuilder page, LoadReport report, List<String> arguments, Instant finished) {
    page.append("<h2>Parameters</h2>\n<table>\n");
    row(page, "target", report.target());
    row(page, "command line", String.join(" ", arguments.stream().map(HtmlReport::quoted).toList()));
    row(page, "max_new_tokens", String.valueOf(report.maxNewTokens()));
    if (!report.slo().isEmpty()) {
      row(page, "SLO", report.slo() + ", met by " + LoadReport.number(100 * report.sloAttainment())
          + "% of a level's requests");
    }
    if (!report.chaos().isEmpty()) {
      row(page, "chaos", report.chaosLine().substring("chaos: ".length()));
    }
    row(page, "finished", finished.toString());
    page.append("</table>\n");
  }

  private static void row(StringBuilder page, String name, String value) {
    page.append("<tr><th>").append(escape(name)).append("</th><td class=\"text\">").append(escape(value))
        .append("</td></tr>\n");
  }

  private static void levels(StringBuilder page, LoadReport report) {
    page.append("<h2>Levels</h2>\n<table>\n<tr><th>level</th><th>requests</th><th>errors</th><th>tokens/s</th>"
        + "<th>achieved req/s</th><th>TTFT p50</th><th>TTFT p99</th><th>ITL p50</th><th>ITL p99</th><th>E2E p50</th>"
        + "<th>E2E p99</th><th>goodput</th><th>KV mean</th><th>waiting max</th><th>batch</th><th>image cache hits / misses</th><th>coordinator share</th></tr>\n");
    for (LevelResult level : report.levels()) {
      ServerContext server = level.server();
      page.append("<tr><td class=\"text\">").append(escape(level.load().describe())).append("</td>");
      cells(page, level.numRequests(), level.numErrors(), fixed(level.tokensPerSecond(), 1),
          fixed(level.achievedRequestRate(), 2), fixed(level.ttft().p50Ms(), 1), fixed(level.ttft().p99Ms(), 1),
          fixed(level.itl().p50Ms(), 1), fixed(level.itl().p99Ms(), 1), fixed(level.e2e().p50Ms(), 1),
          fixed(level.e2e().p99Ms(), 1), report.slo().isEmpty() ? "-" : fixed(level.goodput(report.slo()), 2),
          Double.isNaN(server.kvUsageMean()) ? "-" : fixed(100 * server.kvUsageMean(), 1) + "%",
          fixed(server.waitingMax(), 0), fixed(server.meanBatchSize(), 2),
          Double.isNaN(server.imageCacheHits()) ? "-" : fixed(server.imageCacheHits(), 0) + " / "
              + fixed(server.imageCacheMisses(), 0),
          Double.isNaN(server.coordinatorShareMean()) ? "-" : fixed(100 * server.coordinatorShareMean(), 1) + "%");
      page.append("</tr>\n");
    }
    page.append("</table>\n<p>Latencies in ms over the successful requests; definitions in docs/loadtest.md.</p>\n");
  }

  private static void cells(StringBuilder page, Object... values) {
    for (Object value : values) {
      page.append("<td>").append(escape(String.valueOf(value))).append("</td>");
    }
  }

  /** One line per level: the fraction of samples at or below each latency. */
  private static String cdf(String id, String title, String xLabel, List<LevelResult> levels,
      java.util.function.Function<LevelResult, long[]> samples) {
    SvgPlot plot = new SvgPlot(id, title, xLabel, "fraction of requests").yMax(1);
    for (LevelResult level : levels) {
      long[] sorted = samples.apply(level);
      Arrays.sort(sorted);
      int n = Math.min(sorted.length, CDF_POINTS);
      double[] xs = new double[n];
      double[] ys = new double[n];
      for (int i = 0; i < n; i++) {
        // Rank of the i-th drawn point; the last is the largest sample.
        int rank = n == sorted.length ? i : (int) Math.round((double) i * (sorted.length - 1) / (n - 1));
        xs[i] = sorted[rank] / 1e6;
        ys[i] = (rank + 1.0) / sorted.length;
      }
      plot.add(new SvgPlot.Series(level.load().describe(), xs, ys, false));
    }
    return plot.svg();
  }

  private static String ttftVersusLoad(List<LevelResult> levels) {
    boolean rates = levels.getFirst().load() instanceof Load.Rate;
    SvgPlot plot = new SvgPlot("ttft-load", "TTFT vs load", rates ? "request rate (requests/s)" : "concurrency",
        "time to first token (ms)");
    double[] load = levels.stream().mapToDouble(l -> switch (l.load()) {
      case Load.Concurrency c -> c.clients();
      case Load.Rate r -> r.perSecond();
    }).toArray();
    plot.add(new SvgPlot.Series("p50", load, levels.stream().mapToDouble(l -> l.ttft().p50Ms()).toArray(), true));
    plot.add(new SvgPlot.Series("p99", load, levels.stream().mapToDouble(l -> l.ttft().p99Ms()).toArray(), true));
    return plot.svg();
  }

  /**
   * Output tokens/s per time bin (a tenth of the level, at most 1 s), on the run's timeline. A
   * delta's tokens count when it arrived; a request's tokens are spread evenly over its deltas.
   */
  /** {@code plot} with a vertical marker at each injected fault. */
  private static String marked(SvgPlot plot, ChaosReport chaos) {
    for (ChaosReport.Injected f : chaos.faults()) {
      if (f.injected()) {
        plot.mark(new SvgPlot.Marker(f.atNanos() / 1e9, f.fault().kind()));
      }
    }
    return plot.svg();
  }

  private static SvgPlot throughput(List<LevelResult> levels) {
    SvgPlot plot = new SvgPlot("throughput", "Output throughput", "time since the first level started (s)",
        "output tokens/s");
    for (LevelResult level : levels) {
      if (level.wallNanos() <= 0) {
        continue;
      }
      long bin = Math.max(1, Math.min(1_000_000_000L, level.wallNanos() / 10));
      int numBins = (int) ((level.wallNanos() + bin - 1) / bin);
      double[] tokens = new double[numBins];
      for (RequestResult r : level.requests()) {
        if (r.ttftNanos() < 0) {
          continue;
        }
        double perDelta = (double) r.numTokens() / (r.itlNanos().length + 1);
        long at = r.sentNanos() + r.ttftNanos();
        tokens[(int) Math.min(numBins - 1, at / bin)] += perDelta;
        for (long gap : r.itlNanos()) {
          at += gap;
          tokens[(int) Math.min(numBins - 1, at / bin)] += perDelta;
        }
      }
      double[] xs = new double[numBins];
      double[] ys = new double[numBins];
      for (int i = 0; i < numBins; i++) {
        long width = Math.min(bin, level.wallNanos() - i * bin);
        xs[i] = (level.startNanos() + i * bin + width / 2.0) / 1e9;
        ys[i] = tokens[i] / (width / 1e9);
      }
      plot.add(new SvgPlot.Series(level.load().describe(), xs, ys, false));
    }
    return plot;
  }

  /** A figure of the server's samples over the run's timeline, one line per level; NaN samples are left out. */
  private static SvgPlot serverSeries(String id, String title, String yLabel, List<LevelResult> levels,
      ToDoubleFunction<ServerSample> figure) {
    SvgPlot plot = new SvgPlot(id, title, "time since the first level started (s)", yLabel);
    for (LevelResult level : levels) {
      List<double[]> points = new ArrayList<>();
      for (ServerSample sample : level.server().samples()) {
        double value = figure.applyAsDouble(sample);
        if (!Double.isNaN(value)) {
          points.add(new double[] {(level.startNanos() + sample.atNanos()) / 1e9, value});
        }
      }
      plot.add(new SvgPlot.Series(level.load().describe(), points.stream().mapToDouble(p -> p[0]).toArray(),
          points.stream().mapToDouble(p -> p[1]).toArray(), true));
    }
    return plot;
  }

  private static String fixed(double value, int decimals) {
    return Double.isNaN(value) ? "-" : String.format(Locale.ROOT, "%." + decimals + "f", value);
  }

  /** An argument as a shell would need it: in single quotes when it holds anything but safe characters. */
  private static String quoted(String argument) {
    return argument.matches("[A-Za-z0-9_./:=,@%+-]+") ? argument : "'" + argument.replace("'", "'\\''") + "'";
  }

  /** {@code text} safe inside HTML elements and attribute values. */
  static String escape(String text) {
    StringBuilder out = new StringBuilder(text.length());
    for (char c : text.toCharArray()) {
      switch (c) {
        case '&' -> out.append("&amp;");
        case '<' -> out.append("&lt;");
        case '>' -> out.append("&gt;");
        case '"' -> out.append("&quot;");
        case '\'' -> out.append("&#39;");
        default -> out.append(c);
      }
    }
    return out.toString();
  }
}
