package dev.owlery.coordinator.api;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/** The JSON form of the API keys file (see {@link ApiKeys}): key ids, SHA-256 digests and per-key limits. */
final class ApiKeysJson {

  private static final Set<String> FIELDS = Set.of("id", "sha256", "requests_per_second", "tokens_per_minute");
  /** Ids tag metrics and appear in errors: short and plain. */
  private static final Pattern ID = Pattern.compile("[A-Za-z0-9._-]{1,64}");
  private static final Pattern SHA256 = Pattern.compile("[0-9a-fA-F]{64}");

  private ApiKeysJson() {}

  /** The keys of {@code file}; {@code defaults} where a key sets no limit of its own. */
  static List<ApiKey> read(Path file, KeyLimits defaults) {
    JsonNode root;
    try {
      root = new ObjectMapper().readTree(file.toFile());
    } catch (JacksonException e) {
      throw new IllegalArgumentException("the API keys file " + file + " is not valid JSON: " + e.getOriginalMessage()
          + (e.getLocation() == null ? "" : " (line " + e.getLocation().getLineNr() + ")"), e);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read the API keys file " + file + ": " + e.getMessage(), e);
    }
    JsonNode keys = root.get("keys");
    if (root.size() != 1 || keys == null || !keys.isArray() || keys.isEmpty()) {
      throw new IllegalArgumentException(file + ": the JSON form is {\"keys\": [{\"sha256\": ...}, ...]} with at least "
          + "one key");
    }
    List<ApiKey> read = new ArrayList<>();
    Map<String, String> whereOfId = new HashMap<>();
    Map<String, String> whereOfDigest = new HashMap<>();
    for (int i = 0; i < keys.size(); i++) {
      JsonNode key = keys.get(i);
      String where = file + ": keys[" + i + "]";
      if (!key.isObject()) {
        throw new IllegalArgumentException(where + " must be an object with \"sha256\" and optionally \"id\", "
            + "\"requests_per_second\", \"tokens_per_minute\"");
      }
      key.fieldNames().forEachRemaining(name -> {
        if (!FIELDS.contains(name)) {
          throw new IllegalArgumentException(where + " has an unknown field \"" + name + "\"; known: " + FIELDS);
        }
      });
      String sha256 = key.path("sha256").asText("");
      if (!key.path("sha256").isTextual() || !SHA256.matcher(sha256).matches()) {
        throw new IllegalArgumentException(where + ".sha256 must be 64 hex digits: the SHA-256 of the key, e.g. from "
            + "printf %s KEY | sha256sum");
      }
      byte[] digest = HexFormat.of().parseHex(sha256.toLowerCase(Locale.ROOT));
      String id = key.has("id") ? key.get("id").asText("") : "k-" + HexFormat.of().formatHex(digest, 0, 4);
      if (!key.path("id").isMissingNode() && !key.get("id").isTextual() || !ID.matcher(id).matches()) {
        throw new IllegalArgumentException(where + ".id must be 1-64 letters, digits, '.', '_' or '-'");
      }
      KeyLimits limits = new KeyLimits(number(key, "requests_per_second", where, defaults.requestsPerSecond()),
          (long) number(key, "tokens_per_minute", where, defaults.tokensPerMinute()));
      String previous = whereOfId.putIfAbsent(id, where);
      if (previous != null) {
        throw new IllegalArgumentException(where + " has the id \"" + id + "\" of " + previous + "; ids must differ");
      }
      previous = whereOfDigest.putIfAbsent(sha256.toLowerCase(Locale.ROOT), where);
      if (previous != null) {
        throw new IllegalArgumentException(where + " has the sha256 of " + previous + "; keys must differ");
      }
      read.add(new ApiKey(id, digest, limits));
    }
    return read;
  }

  private static double number(JsonNode key, String field, String where, double fallback) {
    JsonNode value = key.get(field);
    if (value == null) {
      return fallback;
    }
    if (!value.isNumber() || value.asDouble() < 0 || field.equals("tokens_per_minute") && !value.isIntegralNumber()) {
      throw new IllegalArgumentException(where + "." + field + " must be a number >= 0 (0 = no limit)"
          + (field.equals("tokens_per_minute") ? ", a whole one" : "") + ". Given: " + value);
    }
    return value.asDouble();
  }
}
