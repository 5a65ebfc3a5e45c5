package dev.owlery.coordinator.api;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HexFormat;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The keys file's plain form, key ids and lookup, and the token bucket behind the per-key limits. */
class ApiKeysTest {

  private static final String KEY_A = "owl-key-aaaaaaaaaaaaaaaa";
  private static final String KEY_B = "owl-key-bbbbbbbbbbbbbbbb";

  @TempDir Path tmp;

  private Path file(String text) throws Exception {
    return Files.writeString(tmp.resolve("keys.txt"), text);
  }

  @Test
  void commentsAndBlankLinesAreIgnoredAndEachKeyIsFoundByItsSecret() throws Exception {
    ApiKeys keys = ApiKeys.read(file("# team a\n" + KEY_A + "\n\n   \n  # team b\n  " + KEY_B + "  \n"), KeyLimits.NONE);

    assertThat(keys.size()).isEqualTo(2);
    assertThat(ApiKeys.secretsIn(tmp.resolve("keys.txt"))).containsExactly(KEY_A, KEY_B);
    String expectedId = "k-" + HexFormat.of().formatHex(ApiKey.sha256(KEY_A), 0, 4);
    assertThat(keys.find(KEY_A).id()).isEqualTo(expectedId).matches("k-[0-9a-f]{8}");
    assertThat(keys.find(KEY_A).toString()).isEqualTo(expectedId);
    assertThat(keys.find(KEY_B).id()).isNotEqualTo(expectedId);
    assertThat(keys.find(KEY_A + "x")).isNull();
    assertThat(keys.find("")).isNull();
  }

  @Test
  void aBadLineIsNamedByFileAndLineWithoutShowingTheKey() throws Exception {
    Path spaces = file("# keys\n" + KEY_A + "\nowl-key secret-with-space\n");
    assertThatThrownBy(() -> ApiKeys.read(spaces, KeyLimits.NONE)).isInstanceOf(IllegalArgumentException.class)
        .hasMessage(spaces + ":3: a key is one word of printable ASCII without spaces; put one key per line")
        .hasMessageNotContaining("secret-with-space");

    Path shortKey = file(KEY_A + "\n\nshort-key\n");
    assertThatThrownBy(() -> ApiKeys.read(shortKey, KeyLimits.NONE))
        .hasMessage(shortKey + ":3: a key must have at least 16 characters; this one has 9");

    Path twice = file(KEY_A + "\n" + KEY_B + "\n" + KEY_A + "\n");
    assertThatThrownBy(() -> ApiKeys.read(twice, KeyLimits.NONE))
        .hasMessage(twice + ":3: the same key as line 1; keys must differ").hasMessageNotContaining(KEY_A);

    Path onlyComments = file("# nothing yet\n\n");
    assertThatThrownBy(() -> ApiKeys.read(onlyComments, KeyLimits.NONE))
        .hasMessage("the API keys file " + onlyComments + " holds no key; put one key per line");

    assertThatThrownBy(() -> ApiKeys.read(tmp.resolve("missing.txt"), KeyLimits.NONE))
        .hasMessageStartingWith("cannot read the API keys file " + tmp.resolve("missing.txt"));
  }

  private static String sha256(String key) {
    return HexFormat.of().formatHex(ApiKey.sha256(key));
  }

  @Test
  void theJsonFormHoldsDigestsIdsAndPerKeyLimits() throws Exception {
    Path json = Files.writeString(tmp.resolve("keys.json"), """
        {"keys": [
          {"id": "team-a", "sha256": "%s", "requests_per_second": 1, "tokens_per_minute": 100},
          {"sha256": "%s"}
        ]}
        """.formatted(sha256(KEY_A), sha256(KEY_B).toUpperCase()));

    ApiKeys keys = ApiKeys.read(json, new KeyLimits(5, 0));

    assertThat(Files.readString(json)).doesNotContain(KEY_A);
    ApiKey teamA = keys.find(KEY_A);
    assertThat(teamA.id()).isEqualTo("team-a");
    assertThat(teamA.admitRequest()).isNull();
    assertThat(teamA.admitRequest()).as("its own 1 request/s").startsWith("key team-a: over 1 requests/s");
    teamA.generated(100);
    assertThat(teamA.admitGeneration()).startsWith("key team-a: over 100 generated tokens/min");
    ApiKey other = keys.find(KEY_B);
    assertThat(other.id()).isEqualTo("k-" + sha256(KEY_B).substring(0, 8));
    for (int i = 0; i < 5; i++) {
      assertThat(other.admitRequest()).as("the default 5 requests/s").isNull();
    }
    assertThat(other.admitRequest()).startsWith("key " + other.id() + ": over 5 requests/s");
    assertThatThrownBy(() -> ApiKeys.secretsIn(json)).hasMessage("the API keys file " + json + " holds digests (JSON "
        + "form), not keys: a client of it needs the plain form, one key per line");
  }

  @Test
  void aBadJsonKeyIsNamedByItsIndex() throws Exception {
    String a = sha256(KEY_A);
    assertThat(jsonError("{\"keys\": [{\"sha256\": \"%s\"}, {\"sha256\": \"abc\"}]}".formatted(a)))
        .endsWith("keys.json: keys[1].sha256 must be 64 hex digits: the SHA-256 of the key, e.g. from printf %s KEY | "
            + "sha256sum");
    assertThat(jsonError("{\"keys\": [{\"sha256\": \"%s\", \"limit\": 3}]}".formatted(a)))
        .contains("keys.json: keys[0] has an unknown field \"limit\"");
    assertThat(jsonError("{\"keys\": [{\"id\": \"x\", \"sha256\": \"%s\"}, {\"id\": \"x\", \"sha256\": \"%s\"}]}"
        .formatted(a, sha256(KEY_B)))).endsWith("keys.json: keys[1] has the id \"x\" of " + tmp.resolve("keys.json")
        + ": keys[0]; ids must differ");
    assertThat(jsonError("{\"keys\": [{\"sha256\": \"%s\", \"tokens_per_minute\": 1.5}]}".formatted(a)))
        .endsWith("keys.json: keys[0].tokens_per_minute must be a number >= 0 (0 = no limit), a whole one. Given: 1.5");
    assertThat(jsonError("{\"keys\": []}")).endsWith("keys.json: the JSON form is {\"keys\": [{\"sha256\": ...}, ...]} "
        + "with at least one key");
    assertThat(jsonError("{\"keys\": [")).startsWith("the API keys file " + tmp.resolve("keys.json")
        + " is not valid JSON");
  }

  private String jsonError(String text) throws Exception {
    Path json = Files.writeString(tmp.resolve("keys.json"), text);
    try {
      ApiKeys.read(json, KeyLimits.NONE);
    } catch (IllegalArgumentException e) {
      return e.getMessage();
    }
    throw new AssertionError("accepted: " + text);
  }

  @Test
  void aKeyOverItsRequestsPerSecondIsToldWhichLimitAndWhenToRetry() throws Exception {
    ApiKey key = ApiKeys.read(file(KEY_A), new KeyLimits(2, 0)).find(KEY_A);

    assertThat(key.admitRequest()).isNull();
    assertThat(key.admitRequest()).isNull();
    assertThat(key.admitRequest()).matches("key " + key.id() + ": over 2 requests/s; retry in 0\\.[1-5] s");
    assertThat(key.admitGeneration()).as("no token limit").isNull();
  }

  @Test
  void generatedTokensAreChargedAndAKeyInDebtIsRefusedUntilItRefills() throws Exception {
    ApiKey key = ApiKeys.read(file(KEY_A), new KeyLimits(0, 60)).find(KEY_A);

    assertThat(key.admitGeneration()).isNull();
    key.generated(59);
    assertThat(key.admitGeneration()).as("one token left").isNull();
    key.generated(70);
    // 69 tokens of debt refill at one a second: 70 s until one is free again.
    assertThat(key.admitGeneration()).matches("key " + key.id() + ": over 60 generated tokens/min; retry in (69\\.[0-9]|70\\.0) s");
    assertThat(key.admitRequest()).as("no request limit").isNull();
  }

  @Test
  void theBucketRefillsAtItsRateUpToItsCapacity() {
    AtomicLong now = new AtomicLong();
    TokenBucket bucket = new TokenBucket(2, TimeUnit.SECONDS.toNanos(1), now::get);

    assertThat(bucket.take(1)).isZero();
    assertThat(bucket.take(1)).isZero();
    assertThat(bucket.take(1)).isEqualTo(TimeUnit.MILLISECONDS.toNanos(500));
    now.addAndGet(TimeUnit.MILLISECONDS.toNanos(500));
    assertThat(bucket.take(1)).isZero();
    now.addAndGet(TimeUnit.SECONDS.toNanos(10));
    assertThat(bucket.take(2)).as("refilled to its capacity, not beyond").isZero();
    assertThat(bucket.nanosUntil(1)).isEqualTo(TimeUnit.MILLISECONDS.toNanos(500));
    bucket.charge(3);
    assertThat(bucket.nanosUntil(1)).isEqualTo(TimeUnit.SECONDS.toNanos(2));
  }
}
