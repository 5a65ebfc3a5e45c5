package dev.owlery.coordinator.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.owlery.engine.kv.KvCacheDtype;
import dev.owlery.engine.testing.Fixtures;
import org.junit.jupiter.api.Test;

/** What the coordinator derives from the served model's config for placing it on shards. */
class ServedModelTest {

  @Test
  void kvBytesPerTokenFollowTheKvHeadsEachShardHolds() {
    // stories260K: 5 layers, 4 kv heads of 8 floats; keys and values in float32
    ServedModel model = ServedModel.load(Fixtures.stories260k(), null);
    long perKvHead = 2L * 4 * 5 * 8;
    assertThat(model.kvBytesPerToken(1, KvCacheDtype.F32)).isEqualTo(4 * perKvHead);
    assertThat(model.kvBytesPerToken(2, KvCacheDtype.F32)).isEqualTo(2 * perKvHead);
    // half of that in F16
    assertThat(model.kvBytesPerToken(2, KvCacheDtype.F16)).isEqualTo(perKvHead);
    // 8 shards: each holds a copy of one kv head (4 / 8 would be none)
    assertThat(model.kvBytesPerToken(8, KvCacheDtype.F32)).isEqualTo(perKvHead);
    assertThatThrownBy(() -> model.kvBytesPerToken(3, KvCacheDtype.F32))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("num_attention_heads (8) must be divisible by the tensor-parallel size (3)");
  }
}
