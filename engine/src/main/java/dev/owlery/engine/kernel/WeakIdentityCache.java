package dev.owlery.engine.kernel;

import java.lang.ref.ReferenceQueue;
import java.lang.ref.WeakReference;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Function;

/**
 * Values computed once per key object, by identity (two equal records are two keys), held only as
 * long as the key is reachable elsewhere: what kernels derive from a weight matrix lives as long as
 * the model holding the matrix. Identity rather than equality: a matrix view of freed memory equals
 * a later view of new weights at the same address.
 */
final class WeakIdentityCache<K, V> {

  private final ConcurrentHashMap<Key<K>, V> values = new ConcurrentHashMap<>();
  private final ReferenceQueue<K> collected = new ReferenceQueue<>();

  /** The value of {@code key}, computed by {@code compute} the first time (once, under concurrent calls). */
  V get(K key, Function<? super K, ? extends V> compute) {
    V value = values.get(new Key<>(key, null));
    if (value != null) {
      return value;
    }
    for (Object gone = collected.poll(); gone != null; gone = collected.poll()) {
      values.remove(gone);
    }
    return values.computeIfAbsent(new Key<>(key, collected), k -> compute.apply(key));
  }

  /** Keys whose values are held. */
  int size() {
    return values.size();
  }

  private static final class Key<K> extends WeakReference<K> {
    private final int hash;

    Key(K referent, ReferenceQueue<K> queue) {
      super(referent, queue);
      this.hash = System.identityHashCode(referent);
    }

    @Override
    public int hashCode() {
      return hash;
    }

    @Override
    public boolean equals(Object other) {
      if (this == other) {
        return true;
      }
      return other instanceof Key<?> that && hash == that.hash && get() != null && get() == that.get();
    }
  }
}
