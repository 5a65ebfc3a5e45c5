package dev.owlery.loadtest;

import java.util.Random;

/**
 * A distribution of token counts for synthetic requests: {@code fixed:N}, {@code uniform:MIN:MAX}
 * (both ends included) or {@code normal:MEAN:STDDEV} (rounded, and drawn again until it is >= 1).
 */
public sealed interface LengthDistribution {

  /** One count, >= 1. */
  int sample(Random random);

  record Fixed(int length) implements LengthDistribution {
    @Override
    public int sample(Random random) {
      return length;
    }
  }

  record Uniform(int min, int max) implements LengthDistribution {
    @Override
    public int sample(Random random) {
      return min + random.nextInt(max - min + 1);
    }
  }

  record Normal(double mean, double stddev) implements LengthDistribution {
    @Override
    public int sample(Random random) {
      while (true) {
        long length = Math.round(mean + stddev * random.nextGaussian());
        if (length >= 1) {
          return (int) length;
        }
      }
    }
  }

  /**
   * @param option the option being parsed, for the message
   * @throws IllegalArgumentException when {@code text} is not one of the three forms with counts >= 1
   */
  static LengthDistribution parse(String option, String text) {
    String[] parts = text.trim().split(":");
    try {
      LengthDistribution parsed = switch (parts[0]) {
        case "fixed" -> parts.length == 2 ? new Fixed(Integer.parseInt(parts[1])) : null;
        case "uniform" -> parts.length == 3 ? new Uniform(Integer.parseInt(parts[1]), Integer.parseInt(parts[2])) : null;
        case "normal" -> parts.length == 3 ? new Normal(Double.parseDouble(parts[1]), Double.parseDouble(parts[2])) : null;
        default -> null;
      };
      boolean valid = switch (parsed) {
        case null -> false;
        case Fixed f -> f.length() >= 1;
        case Uniform u -> u.min() >= 1 && u.max() >= u.min();
        case Normal n -> n.mean() >= 1 && n.stddev() >= 0;
      };
      if (valid) {
        return parsed;
      }
    } catch (NumberFormatException e) {
      // Reported below with the accepted forms.
    }
    throw new IllegalArgumentException(("%s must be fixed:N, uniform:MIN:MAX (1 <= MIN <= MAX) or normal:MEAN:STDDEV "
        + "(MEAN >= 1, STDDEV >= 0), got '%s'").formatted(option, text));
  }
}
