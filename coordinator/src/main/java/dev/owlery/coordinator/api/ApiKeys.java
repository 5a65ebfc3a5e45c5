package dev.owlery.coordinator.api;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.nio.file.Files;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The API keys a coordinator accepts, read from a keys file in one of two forms. Plain: one key per
 * line, blank lines and lines starting with {@code #} ignored, every key with the default {@link
 * KeyLimits}, its id "k-" and the first 8 hex digits of its SHA-256. JSON (the file starts with
 * <code>{</code>): <code>{"keys": [{"id": "team-a", "sha256": "64 hex digits",
 * "requests_per_second": 2, "tokens_per_minute": 6000}]}</code>, where only {@code sha256} is
 * required (the id and limits default as in the plain form), so the file holds no usable key. Only
 * digests are kept, and a presented key is found by comparing digests in constant time. An empty
 * set ({@link #NONE}) means keys are not required.
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
    if (isJson(file)) {
      return new ApiKeys(ApiKeysJson.read(file, limits));
    }
    return new ApiKeys(secretsIn(file).stream().map(secret -> ApiKey.ofSecret(secret, limits)).toList());
  }

  private static boolean isJson(Path file) {
    try {
      return Files.readString(file).stripLeading().startsWith("{");
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read the API keys file " + file + ": " + e.getMessage(), e);
    }
  }

  /**
   * The keys {@code file} lists, in order, checked as {@link #read} checks them (for a client of a
   * cluster started with this file, such as {@code owlery local}'s own).
   */
  public static List<String> secretsIn(Path file) {
    if (isJson(file)) {
      throw new IllegalArgumentException("the API keys file " + file + " holds digests (JSON form), not keys: a "
          + "client of it needs the plain form, one key per line");
    }
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
