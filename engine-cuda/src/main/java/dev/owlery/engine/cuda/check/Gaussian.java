package dev.owlery.engine.cuda.check;

import java.util.SplittableRandom;

/** Normal deviates from a seeded {@link SplittableRandom} (Box-Muller), so every run draws the same inputs. */
final class Gaussian {

  private Gaussian() {}

  static double next(SplittableRandom random) {
    double u = 1.0 - random.nextDouble(); // (0, 1]: log stays finite
    double v = random.nextDouble();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** {@code n} floats from N(0, sigma^2). */
  static float[] floats(int n, double sigma, SplittableRandom random) {
    float[] out = new float[n];
    for (int i = 0; i < n; i++) {
      out[i] = (float) (next(random) * sigma);
    }
    return out;
  }
}
