package dev.owlery.engine.kernel;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

class WeakIdentityCacheTest {

  record Key(String name) {}

  @Test
  void computesOncePerKeyObjectAndNotForAnEqualOne() {
    WeakIdentityCache<Key, String> cache = new WeakIdentityCache<>();
    AtomicInteger computed = new AtomicInteger();
    Key first = new Key("w");
    Key equal = new Key("w");
    assertThat(cache.get(first, k -> "first " + computed.incrementAndGet())).isEqualTo("first 1");
    assertThat(cache.get(first, k -> "first " + computed.incrementAndGet())).isEqualTo("first 1");
    assertThat(cache.get(equal, k -> "equal " + computed.incrementAndGet())).isEqualTo("equal 2");
    assertThat(cache.get(first, k -> "again " + computed.incrementAndGet())).isEqualTo("first 1");
    assertThat(cache.size()).isEqualTo(2);
  }

  @Test
  void dropsTheValuesOfKeysNoLongerHeldElsewhere() throws InterruptedException {
    WeakIdentityCache<Key, int[]> cache = new WeakIdentityCache<>();
    Key kept = new Key("kept");
    cache.get(kept, k -> new int[1]);
    for (int i = 0; i < 100; i++) {
      cache.get(new Key("dropped " + i), k -> new int[1 << 10]);
    }
    // the values of collected keys go at a later insert
    for (int attempt = 0; attempt < 50 && cache.size() > 2; attempt++) {
      System.gc();
      Thread.sleep(20);
      cache.get(new Key("probe " + attempt), k -> new int[1]);
    }
    assertThat(cache.size()).isLessThanOrEqualTo(2);
    assertThat(cache.get(kept, k -> new int[2])).hasSize(1);
  }
}
