package dev.owlery.loadtest;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.owlery.loadtest.PrometheusText.Sample;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Prometheus text exposition format: comments, labels with escapes, special values, timestamps. */
class PrometheusTextTest {

  @Test
  void readsSamplesWithLabelsAndSpecialValues() {
    String text = """
        # HELP owlery_step_sequences Sequences per step
        # TYPE owlery_step_sequences histogram
        owlery_step_sequences_bucket{le="1.0",} 2.0
        owlery_step_sequences_bucket{le="+Inf",} 10.0

        owlery_step_sequences_max NaN
        owlery_generate_requests_total{outcome="ok", model="a \\"b\\"\\\\c\\nd"} 7 1712345678901
        owlery_low -Inf
          owlery_kv_blocks_used   3.5e1
        # EOF
        """;

    List<Sample> samples = PrometheusText.parse(text);

    assertThat(samples).hasSize(6);
    assertThat(samples.get(0)).isEqualTo(new Sample("owlery_step_sequences_bucket", Map.of("le", "1.0"), 2.0));
    assertThat(samples.get(1).labels()).containsExactly(Map.entry("le", "+Inf"));
    assertThat(samples.get(2).value()).isNaN();
    assertThat(samples.get(3).labels()).containsExactly(Map.entry("outcome", "ok"), Map.entry("model", "a \"b\"\\c\nd"));
    assertThat(samples.get(3).value()).isEqualTo(7.0);
    assertThat(samples.get(4).value()).isEqualTo(Double.NEGATIVE_INFINITY);
    assertThat(samples.get(5)).isEqualTo(new Sample("owlery_kv_blocks_used", Map.of(), 35.0));
  }

  @Test
  void aLineThatIsNotASampleIsNamed() {
    assertThatThrownBy(() -> PrometheusText.parse("ok 1\nowlery_x{le=\"1\" 2\n"))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("line 2 of the Prometheus text, expected ',' or '}' after the value of label le at column 17: "
            + "owlery_x{le=\"1\" 2");
    assertThatThrownBy(() -> PrometheusText.parse("owlery_x{le=\"1\"} many"))
        .hasMessage("line 1 of the Prometheus text, expected a number, +Inf, -Inf or NaN as the value at column 22: "
            + "owlery_x{le=\"1\"} many");
  }
}
