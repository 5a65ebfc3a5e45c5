package dev.owlery.engine.decoder;

import java.util.List;
import java.util.function.Function;

/**
 * One copy of a module per modality, picked by each token's modality, named like the official
 * {@code MultiwayNetwork} (spec §4): weights {@code <prefix>.multiway.0.weight} (text) and
 * {@code <prefix>.multiway.1.weight} (visual). A plain LLaMA checkpoint has one modality and the
 * weight {@code <prefix>.weight}; every token then uses that copy.
 */
public final class Multiway<T> {

  private final List<T> copies;

  private Multiway(List<T> copies) {
    this.copies = List.copyOf(copies);
  }

  /** Loads {@code numModalities} copies (1 or 2) by weight name. */
  public static <T> Multiway<T> load(String prefix, int numModalities, Function<String, T> loader) {
    return switch (numModalities) {
      case 1 -> new Multiway<>(List.of(loader.apply(prefix + ".weight")));
      case 2 -> new Multiway<>(List.of(
          loader.apply(prefix + ".multiway.0.weight"), loader.apply(prefix + ".multiway.1.weight")));
      default -> throw new IllegalArgumentException("numModalities must be 1 or 2, got " + numModalities);
    };
  }

  /** The copy for {@code modality}; a single-modality module serves every modality. */
  public T get(Modality modality) {
    return copies.size() == 1 ? copies.getFirst() : copies.get(modality.index());
  }

  public int numModalities() {
    return copies.size();
  }

  /** End (exclusive) of the run of tokens from {@code start} sharing {@code modalities[start]}'s copy. */
  public int runEnd(Modality[] modalities, int start, int end) {
    if (copies.size() == 1) {
      return end;
    }
    int i = start + 1;
    while (i < end && modalities[i] == modalities[start]) {
      i++;
    }
    return i;
  }
}
