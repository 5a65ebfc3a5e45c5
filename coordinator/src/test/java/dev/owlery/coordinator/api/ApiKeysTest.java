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
