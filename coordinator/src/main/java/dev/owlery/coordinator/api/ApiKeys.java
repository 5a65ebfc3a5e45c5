package dev.owlery.coordinator.api;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.nio.file.Files;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The API keys a coordinator accepts, read from a keys file: one key per line; blank lines and lines
 * starting with {@code #} are ignored. Every key gets the same {@link KeyLimits}. A key's id is "k-"
 * and the first 8 hex digits of its SHA-256; only digests are kept, and a presented key is found
 * by comparing digests in constant time. An empty set ({@link #NONE}) means keys are not required.
 */
public final class ApiKeys {

  /** No keys: every caller is served, as {@link ApiKey#NONE}. */
  public static final ApiKeys NONE = new ApiKeys(List.of());

  /** Shorter keys are refused: they could be guessed. */
  static final int MIN_KEY_LENGTH = 16;

  private final List<ApiKey> keys;

  private ApiKeys(List<ApiKey> keys) {
    this.keys = List.copyOf(keys);
  }

  /**
   * Reads {@code file}; every key gets {@code limits}.
   *
   * @throws IllegalArgumentException naming the file and line of a bad key (never the key), or when
   *     the file holds no key
   * @throws UncheckedIOException when the file cannot be read
   */
  public static ApiKeys read(Path file, KeyLimits limits) {
    return new ApiKeys(secretsIn(file).stream().map(secret -> ApiKey.ofSecret(secret, limits)).toList());
  }

  /**
   * The keys {@code file} lists, in order, checked as {@link #read} checks them (for a client of a
   * cluster started with this file, such as {@code owlery local}'s own).
   */
  public static List<String> secretsIn(Path file) {
    List<String> lines;
    try {
      lines = Files.readAllLines(file);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read the API keys file " + file + ": " + e.getMessage(), e);
    }
    Map<String, Integer> lineOf = new LinkedHashMap<>();
    for (int i = 0; i < lines.size(); i++) {
      String line = lines.get(i).strip();
      if (line.isEmpty() || line.startsWith("#")) {
        continue;
      }
      String where = file + ":" + (i + 1) + ": ";
      if (line.chars().anyMatch(c -> c < 0x21 || c > 0x7e)) {
        throw new IllegalArgumentException(where + "a key is one word of printable ASCII without spaces; put one key "
            + "per line");
      }
      if (line.length() < MIN_KEY_LENGTH) {
        throw new IllegalArgumentException(where + "a key must have at least %d characters; this one has %d"
            .formatted(MIN_KEY_LENGTH, line.length()));
      }
      Integer previous = lineOf.putIfAbsent(line, i + 1);
      if (previous != null) {
        throw new IllegalArgumentException(where + "the same key as line " + previous + "; keys must differ");
      }
    }
    if (lineOf.isEmpty()) {
      throw new IllegalArgumentException("the API keys file " + file + " holds no key; put one key per line");
    }
    return List.copyOf(lineOf.keySet());
  }

  /** Whether keys are required (the set is not empty). */
  public boolean required() {
    return !keys.isEmpty();
  }

  public int size() {
    return keys.size();
  }

  /**
   * The key whose secret is {@code presented}, or null. Every key's digest is compared, each in
   * constant time, so the time taken says nothing about which key nearly matched.
   */
  ApiKey find(String presented) {
    byte[] digest = ApiKey.sha256(presented);
    ApiKey found = null;
    for (ApiKey key : keys) {
      if (key.matches(digest)) {
        found = key;
      }
    }
    return found;
  }
}
