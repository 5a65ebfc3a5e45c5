package dev.owlery.engine.decoder;

/** Which Modality-Adaptive Module copy a token goes through (spec §4: indicator 0 text, 1 visual). */
public enum Modality {
  TEXT,
  VISUAL;

  /** The {@code multiway.i} index of this modality's weights. */
  public int index() {
    return switch (this) {
      case TEXT -> 0;
      case VISUAL -> 1;
    };
  }

  /** The modality of a {@code modality_indicators} value (0 or 1). */
  public static Modality ofIndicator(long indicator) {
    if (indicator == 0) {
      return TEXT;
    } else if (indicator == 1) {
      return VISUAL;
    }
    throw new IllegalArgumentException("modality indicator must be 0 (text) or 1 (visual), got " + indicator);
  }
}
