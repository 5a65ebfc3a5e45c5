package dev.owlery.loadtest;

import static org.assertj.core.api.Assertions.assertThat;

import io.grpc.Status;
import java.time.Instant;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The HTML report's content, without a browser: self-contained, parameters escaped, one path per level. */
class HtmlReportTest {

  private static final long MS = 1_000_000;

  private static RequestResult ok(long index, long ttftMs, long e2eMs) {
    return new RequestResult(index, index * 10 * MS, 3, 0, 3, ttftMs * MS, new long[] {5 * MS, 6 * MS}, e2eMs * MS,
        Status.Code.OK, "");
  }

  private final LevelResult level = LevelResult.of(new Load.Rate(2, 1), List.of(ok(0, 10, 21), ok(1, 12, 25),
      ok(2, 30, 40)), 100 * MS).in(0, new ServerContext(List.of("http://127.0.0.1:1/metrics"),
      List.of(new ServerSample(0, 1, 3, 0, 1, 0, 0, 0, Double.NaN, Double.NaN, Double.NaN, Double.NaN, 1),
          new ServerSample(100 * MS, 3, 1, 2, 1, 0, 4, 2, Double.NaN, Double.NaN, Double.NaN, Double.NaN, 1)), 0, ""));
  private final String html = HtmlReport.render(new LoadReport("127.0.0.1:7070", 8, List.of(level),
      Slo.parse("ttft=20ms"), 0.9, ChaosReport.NONE), List.of("--server", "127.0.0.1:7070", "--prompt", "a <b> & 'c'"),
      Instant.parse("2026-12-03T10:00:00Z"));

  @Test
  void theParametersAreEscapedAndNothingIsFetched() {
    assertThat(html).contains("<td class=\"text\">--server 127.0.0.1:7070 --prompt &#39;a &lt;b&gt; &amp; &#39;\\&#39;&#39;c&#39;\\&#39;&#39;&#39;</td>")
        .contains("2026-12-03T10:00:00Z").contains("ttft=20ms, met by 90% of a level&#39;s requests");
    // The SVG namespace is a name, not a fetch; nothing else points outside the page.
    assertThat(html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "")).doesNotContain("http://", "https://",
        "src=", "href=", "@import", "url(");
  }

  @Test
  void eachPlotHasALinePerLevelThroughItsData() {
    assertThat(html).contains("<svg id=\"ttft-cdf\"").contains("<svg id=\"kv-usage\"");
    // TTFT and E2E CDFs: a point per request; ITL: two gaps per request.
    assertThat(html.split("class=\"series\" data-points=\"3\"", -1)).hasSize(3);
    assertThat(html).contains("class=\"series\" data-points=\"6\"");
    // KV usage 25% then 75%: two samples, drawn as circles.
    assertThat(html).contains("<title>rate 2/s: 0, 25</title>").contains("<title>rate 2/s: 0.1, 75</title>");
  }
}
