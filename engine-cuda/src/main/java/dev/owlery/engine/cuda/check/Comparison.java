package dev.owlery.engine.cuda.check;

import dev.owlery.engine.cuda.check.KernelCase.Expected;
import dev.owlery.engine.cuda.check.KernelCase.Tolerance;

/**
 * The device's output held to the CPU's: the largest absolute error, the largest error relative to
 * each value's scale, how many values fell outside the tolerance (NaNs included) and the first of
 * them.
 */
record Comparison(int count, double maxAbsError, double maxRelError, int failures, int firstFailure) {

  static Comparison of(Expected expected, float[] actual, Tolerance tolerance) {
    float[] values = expected.values();
    float[] scale = expected.scale();
    if (actual.length != values.length) {
      throw new IllegalStateException("the device returned %d values for %d expected".formatted(actual.length,
          values.length));
    }
    double maxAbs = 0;
    double maxRel = 0;
    int failures = 0;
    int first = -1;
    for (int i = 0; i < values.length; i++) {
      double error = Math.abs((double) actual[i] - values[i]);
      boolean ok = error <= tolerance.absolute() + tolerance.relative() * scale[i]; // false for NaN
      if (!ok) {
        failures++;
        first = first < 0 ? i : first;
      }
      if (Double.isNaN(error)) {
        maxAbs = Double.NaN;
        maxRel = Double.NaN;
      } else if (!Double.isNaN(maxAbs)) {
        maxAbs = Math.max(maxAbs, error);
        if (scale[i] > 0) {
          maxRel = Math.max(maxRel, error / scale[i]);
        }
      }
    }
    return new Comparison(values.length, maxAbs, maxRel, failures, first);
  }

  boolean passed() {
    return failures == 0;
  }
}
