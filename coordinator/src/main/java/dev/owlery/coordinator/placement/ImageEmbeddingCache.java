package dev.owlery.coordinator.placement;

import com.google.protobuf.ByteString;
import dev.owlery.proto.v1.AspectRatioPolicy;
import dev.owlery.proto.v1.Image;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.function.BiFunction;

/**
 * The visual embeddings of recently seen images, keyed by the SHA-256 of the image bytes and the
 * aspect-ratio policy, least recently used first out when their bytes pass the bound. A request's
 * images that are all cached skip the vision worker; the others go to it in one batch (each
 * distinct image once). Two requests missing the same image at once both encode it. Thread-safe.
 */
public final class ImageEmbeddingCache {

  /** Counter of images found in the cache. */
  public static final String HITS_COUNTER = "owlery.image_cache.hits";
  /** Counter of images the vision worker had to encode. */
  public static final String MISSES_COUNTER = "owlery.image_cache.misses";
  /** Gauge of images cached. */
  public static final String ENTRIES_GAUGE = "owlery.image_cache.entries";
  /** Gauge of embedding bytes cached. */
  public static final String BYTES_GAUGE = "owlery.image_cache.bytes";
  /** 256 MiB: about 200 images of LLaMA-7B width (65 rows of 4096 F32). */
  public static final long DEFAULT_MAX_BYTES = 256L << 20;

  /** What identifies an image's embeddings: its bytes' SHA-256 and how it is fitted to a square. */
  private record Key(ByteString sha256, AspectRatioPolicy policy) {}

  private final BiFunction<List<Image>, AspectRatioPolicy, CompletableFuture<List<ByteString>>> encoder;
  private final long maxBytes;
  private final Counter hits;
  private final Counter misses;
  // Guarded by this; access order, eldest first.
  private final LinkedHashMap<Key, ByteString> entries = new LinkedHashMap<>(16, 0.75f, true);
  // Guarded by this.
  private long numBytes;

  /**
   * @param encoder encodes images the cache lacks, e.g. {@link VisionWorkerPool#encode}
   * @param maxBytes most embedding bytes kept, >= 0 (0 caches nothing)
   */
  public ImageEmbeddingCache(BiFunction<List<Image>, AspectRatioPolicy, CompletableFuture<List<ByteString>>> encoder,
      long maxBytes, MeterRegistry meters) {
    if (maxBytes < 0) {
      throw new IllegalArgumentException("imageCacheBytes must be >= 0 (0 disables the cache). Given: " + maxBytes);
    }
    this.encoder = encoder;
    this.maxBytes = maxBytes;
    this.hits = Counter.builder(HITS_COUNTER).description("Images whose embeddings were cached").register(meters);
    this.misses = Counter.builder(MISSES_COUNTER).description("Images sent to a vision worker").register(meters);
    Gauge.builder(ENTRIES_GAUGE, this, ImageEmbeddingCache::numEntries).description("Images cached").register(meters);
    Gauge.builder(BYTES_GAUGE, this, ImageEmbeddingCache::numBytes).baseUnit("bytes")
        .description("Embedding bytes cached").register(meters);
  }

  /**
   * The embeddings of {@code images}, in order, as {@link VisionWorkerPool#encode} gives them; the
   * missing ones are encoded (in the caller's gRPC context) and cached. Cancelling the result
   * cancels the encoding.
   */
  public CompletableFuture<List<ByteString>> encode(List<Image> images, AspectRatioPolicy policy) {
    List<Key> keys = new ArrayList<>(images.size());
    ByteString[] found = new ByteString[images.size()];
    Map<Key, Integer> missing = new LinkedHashMap<>(); // key -> index of its first image
    for (Image image : images) {
      keys.add(new Key(sha256(image.getData()), policy)); // hashed outside the lock
    }
    synchronized (this) {
      for (int i = 0; i < images.size(); i++) {
        Key key = keys.get(i);
        found[i] = entries.get(key);
        if (found[i] == null) {
          missing.putIfAbsent(key, i);
        }
      }
    }
    int numMissing = 0;
    for (ByteString embeddings : found) {
      numMissing += embeddings == null ? 1 : 0;
    }
    hits.increment(images.size() - numMissing);
    misses.increment(numMissing);
    if (missing.isEmpty()) {
      return CompletableFuture.completedFuture(List.of(found));
    }
    List<Image> toEncode = missing.values().stream().map(images::get).toList();
    CompletableFuture<List<ByteString>> encoding = encoder.apply(toEncode, policy);
    CompletableFuture<List<ByteString>> result = encoding.thenApply(encoded -> {
      List<Key> encodedKeys = List.copyOf(missing.keySet());
      for (int j = 0; j < encodedKeys.size(); j++) {
        put(encodedKeys.get(j), encoded.get(j));
      }
      for (int i = 0; i < found.length; i++) {
        if (found[i] == null) {
          found[i] = encoded.get(encodedKeys.indexOf(keys.get(i)));
        }
      }
      return List.of(found);
    });
    result.whenComplete((value, error) -> {
      if (result.isCancelled()) {
        encoding.cancel(true);
      }
    });
    return result;
  }

  private synchronized void put(Key key, ByteString embeddings) {
    if (embeddings.size() > maxBytes) {
      return;
    }
    ByteString previous = entries.put(key, embeddings);
    numBytes += embeddings.size() - (previous == null ? 0 : previous.size());
    var eldest = entries.entrySet().iterator();
    while (numBytes > maxBytes) {
      numBytes -= eldest.next().getValue().size();
      eldest.remove();
    }
  }

  /** Images cached now. */
  public synchronized int numEntries() {
    return entries.size();
  }

  /** Embedding bytes cached now. */
  public synchronized long numBytes() {
    return numBytes;
  }

  private static ByteString sha256(ByteString data) {
    try {
      MessageDigest digest = MessageDigest.getInstance("SHA-256");
      digest.update(data.asReadOnlyByteBuffer());
      return ByteString.copyFrom(digest.digest());
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("every Java platform has SHA-256", e);
    }
  }
}
