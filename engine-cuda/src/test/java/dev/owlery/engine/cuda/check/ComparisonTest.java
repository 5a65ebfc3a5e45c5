package dev.owlery.engine.cuda.check;

import static org.assertj.core.api.Assertions.assertThat;

import dev.owlery.engine.cuda.check.KernelCase.Expected;
import dev.owlery.engine.cuda.check.KernelCase.Tolerance;
import org.junit.jupiter.api.Test;

class ComparisonTest {

  private static final Expected EXPECTED = new Expected(new float[] {1f, -2f, 0f}, new float[] {1f, 2f, 10f});

  @Test
  void anErrorWithinAbsolutePlusRelativeTimesScalePasses() {
    // allowed: 0.01 + 0.1 * scale = 0.11, 0.21, 1.01
    Comparison c = Comparison.of(EXPECTED, new float[] {1.1f, -2.2f, 1.0f}, new Tolerance(0.01, 0.1, "test"));
    assertThat(c.passed()).isTrue();
    assertThat(c.maxAbsError()).isCloseTo(1.0, org.assertj.core.data.Offset.offset(1e-6));
    assertThat(c.maxRelError()).isCloseTo(0.1, org.assertj.core.data.Offset.offset(1e-6));
  }

  @Test
  void anErrorBeyondTheToleranceFailsAndNamesTheFirstValue() {
    Comparison c = Comparison.of(EXPECTED, new float[] {1f, -2.3f, 2f}, new Tolerance(0.01, 0.1, "test"));
    assertThat(c.passed()).isFalse();
    assertThat(c.failures()).isEqualTo(2);
    assertThat(c.firstFailure()).isEqualTo(1);
  }

  @Test
  void aNanNeverPasses() {
    Comparison c = Comparison.of(EXPECTED, new float[] {1f, Float.NaN, 0f}, new Tolerance(1e9, 1e9, "test"));
    assertThat(c.passed()).isFalse();
    assertThat(c.maxAbsError()).isNaN();
  }
}
