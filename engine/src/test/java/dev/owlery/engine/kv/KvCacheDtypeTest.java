package dev.owlery.engine.kv;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** What each KV cache dtype stores, reads back and costs, in both cache layouts. */
class KvCacheDtypeTest {

  private static final int HEAD_DIM = 5;

  private static KvCache contiguous(KvCacheDtype dtype) {
    return new ContiguousKvCache(2, 3, HEAD_DIM, 8, dtype);
  }

  private static KvCache paged(KvCacheDtype dtype) {
    PagedKvCache cache = new KvBlockPool(2, 3, HEAD_DIM, 4, 4, dtype).newSequenceCache();
    cache.appendBlock(3);
    cache.appendBlock(0);
    return cache;
  }

  private static float[] written(KvCache cache) {
    Random random = new Random(7);
    float[] key = new float[HEAD_DIM];
    float[] value = new float[HEAD_DIM];
    for (int i = 0; i < HEAD_DIM; i++) {
      key[i] = (float) random.nextGaussian() * 3;
      value[i] = (float) random.nextGaussian();
    }
    cache.write(1, 6, 2, key, 0, value, 0);
    float[] keyAndValue = new float[2 * HEAD_DIM];
    System.arraycopy(key, 0, keyAndValue, 0, HEAD_DIM);
    System.arraycopy(value, 0, keyAndValue, HEAD_DIM, HEAD_DIM);
    return keyAndValue;
  }

  private static float[] readBack(KvCache cache) {
    float[] keyAndValue = new float[2 * HEAD_DIM];
    cache.layer(1).readKeys(2, 6, 1, keyAndValue, 0);
    cache.layer(1).readValues(2, 6, 1, keyAndValue, HEAD_DIM);
    return keyAndValue;
  }

  @Test
  void f32CachesGiveBackExactlyWhatWasWritten() {
    for (KvCache cache : new KvCache[] {contiguous(KvCacheDtype.F32), paged(KvCacheDtype.F32)}) {
      float[] written = written(cache);
      assertThat(readBack(cache)).containsExactly(written);
    }
  }

  @Test
  void f16CachesGiveBackEachElementRoundedToHalfPrecision() {
    for (KvCache cache : new KvCache[] {contiguous(KvCacheDtype.F16), paged(KvCacheDtype.F16)}) {
      float[] written = written(cache);
      float[] read = readBack(cache);
      assertThat(cache.dtype()).isEqualTo(KvCacheDtype.F16);
      assertThat(read).isNotEqualTo(written); // really rounded
      for (int i = 0; i < written.length; i++) {
        assertThat(read[i]).isEqualTo(Float.float16ToFloat(Float.floatToFloat16(written[i])));
        // round to nearest with 11 significant bits: at most half an ulp, 2^-11 relative
        assertThat((double) Math.abs(read[i] - written[i])).isLessThanOrEqualTo(Math.abs(written[i]) * 0x1p-11);
      }
    }
  }

  @Test
  void anF16PositionOfLlama2_7bTakesHalfAMebibyte() {
    // 32 layers x 32 kv heads x 128, keys and values: one position over all ranks
    assertThat(KvBlockPool.bytes(32, 32, 128, 1, 1, KvCacheDtype.F32)).isEqualTo(1L << 20);
    assertThat(KvBlockPool.bytes(32, 32, 128, 1, 1, KvCacheDtype.F16)).isEqualTo(1L << 19);
    assertThat(new KvBlockPool(2, 3, HEAD_DIM, 4, 4, KvCacheDtype.F16).bytes()).isEqualTo(2L * 2 * 2 * 4 * 4 * 3 * HEAD_DIM);
  }

  @ParameterizedTest
  @EnumSource(KvCacheDtype.class)
  void theDefaultIsF16AndFlagsParseEitherDtype(KvCacheDtype dtype) {
    assertThat(KvCacheDtype.DEFAULT).isEqualTo(KvCacheDtype.F16);
    assertThat(KvCacheDtype.parse("--kv-cache-dtype", dtype.flagValue())).isEqualTo(dtype);
    assertThatThrownBy(() -> KvCacheDtype.parse("--kv-cache-dtype", "bf16"))
        .hasMessage("--kv-cache-dtype must be f16 or f32. Given: \"bf16\"");
  }

  @Test
  void anElementBeyondTheHalfPrecisionRangeIsRefusedNamingTheFix() {
    KvCache cache = paged(KvCacheDtype.F16);
    float[] key = {1f, 70_000f, 0f, 0f, 0f};
    assertThatThrownBy(() -> cache.write(1, 0, 0, key, 0, new float[HEAD_DIM], 0))
        .isInstanceOf(IllegalStateException.class)
        .hasMessage("a key of layer 1 is 70000.0, beyond the F16 KV cache's range of +-65504; "
            + "run with the float32 KV cache (--kv-cache-dtype f32)");
  }
}
