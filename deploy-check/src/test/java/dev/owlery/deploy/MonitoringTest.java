package dev.owlery.deploy;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import tools.jackson.databind.JsonNode;

/** The Grafana dashboard and the Prometheus alert rules read only series the nodes serve. */
class MonitoringTest {

  private final ServedMetrics served = ServedMetrics.fromReadme();

  @Test
  void theSeriesOfAnExpressionAreFoundAndAnUnservedOneIsCaught() {
    assertThat(ServedMetrics.seriesIn(
            "histogram_quantile(0.99, sum by (le) (rate(owlery_nope_seconds_bucket{outcome!~\"ok|x\"}[5m]))) > 1e3"
                + " and on (instance) up == 0"))
        .containsExactly("owlery_nope_seconds_bucket", "up");
    assertThat(served.serves("owlery_nope_seconds_bucket")).isFalse();
    assertThat(served.serves("owlery_generate_time_to_first_token_seconds_bucket")).isTrue();
    assertThat(served.serves("owlery_generate_requests_total")).isTrue();
    assertThat(served.serves("owlery_generate_request_total")).isFalse();
  }

  @Test
  void theDashboardShowsOnlyServedSeries() {
    JsonNode dashboard = DeployFiles.json(DeployFiles.deploy("kubernetes/base/dashboards/owlery-serving.json"));
    List<String> expressions = new ArrayList<>();
    for (JsonNode panel : dashboard.path("panels")) {
      panel.path("targets").forEach(target -> expressions.add(target.path("expr").asString()));
    }
    assertThat(expressions).hasSizeGreaterThan(20);
    assertEveryExpressionReadsServedSeriesOnly(expressions);
    JsonNode datasource = DeployFiles.yaml(DeployFiles.deploy("docker/grafana/datasources/prometheus.yml")).path("datasources").get(0);
    for (JsonNode panel : dashboard.path("panels")) {
      assertThat(panel.path("datasource").path("uid").asString()).as("panel %s's datasource", panel.path("title"))
          .isEqualTo(datasource.path("uid").asString());
    }
  }

  @Test
  void theAlertRulesReadOnlyServedSeries() {
    List<String> expressions = new ArrayList<>();
    for (JsonNode group : composeAlertGroups()) {
      group.path("rules").forEach(rule -> expressions.add(rule.path("expr").asString()));
    }
    assertThat(expressions).hasSize(7);
    assertEveryExpressionReadsServedSeriesOnly(expressions);
  }

  @Test
  void kubernetesAndComposeAlertOnTheSameRules() {
    JsonNode rule = DeployFiles.yamlDocuments(DeployFiles.deploy("kubernetes/base/monitoring.yaml")).stream()
        .filter(document -> document.path("kind").asString().equals("PrometheusRule")).findFirst().orElseThrow();
    assertThat(rule.path("spec").path("groups")).isEqualTo(composeAlertGroups());
  }

  @Test
  void everyAlertIsExplainedInTheOperationsGuide() {
    String operations = DeployFiles.text(DeployFiles.root().resolve("docs/operations.md"));
    for (JsonNode group : composeAlertGroups()) {
      group.path("rules").forEach(rule -> assertThat(operations).contains("`" + rule.path("alert").asString() + "`"));
    }
  }

  private static JsonNode composeAlertGroups() {
    return DeployFiles.yaml(DeployFiles.deploy("docker/alerts.yml")).path("groups");
  }

  private void assertEveryExpressionReadsServedSeriesOnly(List<String> expressions) {
    for (String expression : expressions) {
      assertThat(ServedMetrics.seriesIn(expression)).as("series in %s", expression).isNotEmpty()
          .allSatisfy(series -> assertThat(served.serves(series))
              .as("%s (in %s) is served by a node (README's Metrics table)", series, expression).isTrue());
    }
  }
}
