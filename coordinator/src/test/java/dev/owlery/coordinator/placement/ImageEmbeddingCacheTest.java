package dev.owlery.coordinator.placement;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.ByteString;
import dev.owlery.proto.v1.AspectRatioPolicy;
import dev.owlery.proto.v1.Image;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;

/**
 * The image-embedding cache on its own, with an encoder that records what it is asked to encode and
 * answers 100 bytes per image (the image's first byte repeated, so answers are told apart).
 */
class ImageEmbeddingCacheTest {

  private static final int EMBEDDING_BYTES = 100;

  private final MeterRegistry meters = new SimpleMeterRegistry();
  private final List<List<Image>> calls = new ArrayList<>();

  private ImageEmbeddingCache cache(long maxBytes) {
    return new ImageEmbeddingCache((images, policy) -> {
      calls.add(images);
      return CompletableFuture.completedFuture(images.stream().map(ImageEmbeddingCacheTest::embeddingOf).toList());
    }, maxBytes, meters);
  }

  private static ByteString embeddingOf(Image image) {
    byte[] data = new byte[EMBEDDING_BYTES];
    java.util.Arrays.fill(data, image.getData().byteAt(0));
    return ByteString.copyFrom(data);
  }

  private static Image image(int tag) {
    return Image.newBuilder().setData(ByteString.copyFrom(new byte[] {(byte) tag, 1, 2, 3})).build();
  }

  private List<ByteString> encode(ImageEmbeddingCache cache, AspectRatioPolicy policy, Image... images) {
    return cache.encode(List.of(images), policy).join();
  }

  private double count(String name) {
    return meters.get(name).counter().count();
  }

  @Test
  void aRepeatedImageIsAHitAndOnlyMissingImagesAreEncoded() {
    ImageEmbeddingCache cache = cache(ImageEmbeddingCache.DEFAULT_MAX_BYTES);

    encode(cache, AspectRatioPolicy.ASPECT_RATIO_POLICY_PAD, image(1));
    List<ByteString> second = encode(cache, AspectRatioPolicy.ASPECT_RATIO_POLICY_PAD, image(2), image(1), image(2));

    // the second call sends image 2 once; image 1 comes from the cache, in its place
    assertThat(calls).hasSize(2);
    assertThat(calls.get(1)).containsExactly(image(2));
    assertThat(second).containsExactly(embeddingOf(image(2)), embeddingOf(image(1)), embeddingOf(image(2)));
    assertThat(count(ImageEmbeddingCache.HITS_COUNTER)).isEqualTo(1);
    assertThat(count(ImageEmbeddingCache.MISSES_COUNTER)).isEqualTo(3);
    assertThat(cache.numEntries()).isEqualTo(2);
    assertThat(meters.get(ImageEmbeddingCache.BYTES_GAUGE).gauge().value()).isEqualTo(2 * EMBEDDING_BYTES);
  }

  @Test
  void theAspectRatioPolicyIsPartOfTheKey() {
    ImageEmbeddingCache cache = cache(ImageEmbeddingCache.DEFAULT_MAX_BYTES);

    encode(cache, AspectRatioPolicy.ASPECT_RATIO_POLICY_PAD, image(1));
    encode(cache, AspectRatioPolicy.ASPECT_RATIO_POLICY_RESIZE, image(1));

    assertThat(calls).hasSize(2);
    assertThat(count(ImageEmbeddingCache.HITS_COUNTER)).isZero();
  }

  @Test
  void theLeastRecentlyUsedImageIsEvictedWhenTheBytesPassTheBound() {
    ImageEmbeddingCache cache = cache(2 * EMBEDDING_BYTES + 50); // room for two images
    AspectRatioPolicy pad = AspectRatioPolicy.ASPECT_RATIO_POLICY_PAD;

    encode(cache, pad, image(1));
    encode(cache, pad, image(2));
    encode(cache, pad, image(1)); // a hit: image 2 is now the least recently used
    encode(cache, pad, image(3)); // evicts image 2

    assertThat(cache.numEntries()).isEqualTo(2);
    assertThat(cache.numBytes()).isEqualTo(2 * EMBEDDING_BYTES);
    int before = calls.size();
    encode(cache, pad, image(1));
    encode(cache, pad, image(3));
    assertThat(calls).hasSize(before);
    encode(cache, pad, image(2));
    assertThat(calls).hasSize(before + 1);
    assertThat(calls.getLast()).containsExactly(image(2));
  }

  @Test
  void anEmbeddingLargerThanTheBoundIsNotCached() {
    ImageEmbeddingCache cache = cache(EMBEDDING_BYTES - 1);

    encode(cache, AspectRatioPolicy.ASPECT_RATIO_POLICY_PAD, image(1));
    encode(cache, AspectRatioPolicy.ASPECT_RATIO_POLICY_PAD, image(1));

    assertThat(calls).hasSize(2);
    assertThat(cache.numEntries()).isZero();
    assertThat(cache.numBytes()).isZero();
  }
}
