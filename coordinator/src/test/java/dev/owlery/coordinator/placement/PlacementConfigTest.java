package dev.owlery.coordinator.placement;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class PlacementConfigTest {

  private static final long GIB = 1L << 30;
  /** LLaMA-2-7B on one of two shards, float32: 32 layers x 2 x 16 kv heads x 128 x 4 B. */
  private static final long SEVEN_B_HALF = 32L * 2 * 16 * 128 * 4;

  @Test
  void byDefaultThePoolTakesHalfTheSmallestShardsHeapAtMostAFullContextPerSequence() {
    PlacementConfig config = PlacementConfig.of(2, "/models/owl"); // 16 sequences, 16-position blocks

    // 7B: 1 GiB of a 2 GiB heap holds 2048 positions of 512 KiB: 128 blocks.
    assertThat(config.numKvBlocks(2048, SEVEN_B_HALF, 2 * GIB)).isEqualTo(128);
    // A small model: 16 sequences of 512 positions fit many times over; 16 x 512 / 16 blocks.
    assertThat(config.numKvBlocks(512, 640, 2 * GIB)).isEqualTo(512);
    // A heap too small for one block still gets one (LoadSlice then says what is missing).
    assertThat(config.numKvBlocks(2048, SEVEN_B_HALF, 1 << 20)).isEqualTo(1);
  }

  @Test
  void anExplicitPoolInTokensOrBytesWins() {
    PlacementConfig base = PlacementConfig.of(2, "/models/owl");

    assertThat(base.withKvCache(16, 1000, 0).numKvBlocks(2048, SEVEN_B_HALF, 2 * GIB)).isEqualTo(62);
    assertThat(base.withKvCache(16, 0, 4 * GIB).numKvBlocks(2048, SEVEN_B_HALF, 2 * GIB)).isEqualTo(512);
    assertThatThrownBy(() -> base.withKvCache(16, 1000, GIB)).isInstanceOf(IllegalArgumentException.class)
        .hasMessage("kvCacheTokens and kvCacheBytes must be >= 0 and at most one set. Given: 1000, 1073741824");
  }

  @Test
  void onDevicesThePoolIsWhatThePlansAllowAtMostAFullContextPerSequenceUnlessSetExplicitly() {
    PlacementConfig config = PlacementConfig.of(2, "/models/owl"); // 16 sequences, 16-position blocks

    // 7B on an H200 at 0.9 plans 14,547 blocks; 16 sequences of 2048 positions need 2048
    assertThat(config.numKvBlocksOnDevices(2048, SEVEN_B_HALF, 14_547)).isEqualTo(2048);
    assertThat(config.numKvBlocksOnDevices(2048, SEVEN_B_HALF, 300)).isEqualTo(300);
    // an explicit pool is sent as given; a shard whose plan allows less refuses LoadSlice
    assertThat(config.withKvCache(16, 1000, 0).numKvBlocksOnDevices(2048, SEVEN_B_HALF, 14_547)).isEqualTo(62);
  }
}
