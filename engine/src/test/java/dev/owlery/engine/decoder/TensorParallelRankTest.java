package dev.owlery.engine.decoder;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The per-rank arithmetic of a tensor-parallel split: vocabulary padding, kv-head replication, even shares. */
class TensorParallelRankTest {

  private static List<VocabSlice> vocabSlices(int vocabSize, int size) {
    List<VocabSlice> slices = new ArrayList<>();
    for (int r = 0; r < size; r++) {
      slices.add(new TensorParallelRank(r, size).vocab(vocabSize));
    }
    return slices;
  }

  @Test
  void vocabularyOf32000OverThreeRanksGivesEachCeilRowsAndTheLastRankThePadding() {
    assertThat(vocabSlices(32_000, 3)).containsExactly(
        new VocabSlice(0, 10_667, 10_667),
        new VocabSlice(10_667, 21_334, 10_667),
        new VocabSlice(21_334, 32_000, 10_667));
    VocabSlice last = new TensorParallelRank(2, 3).vocab(32_000);
    assertThat(last.size()).isEqualTo(10_666);
    assertThat(last.numPaddingRows()).isEqualTo(1);
  }

  @Test
  void vocabularySlicesTileTheRealIdsWithThePaddingOnTheLastRanks() {
    // 500 over 6: 84 rows each, 504 in all; the last rank holds 80 real ids and 4 padding rows
    List<VocabSlice> slices = vocabSlices(500, 6);
    assertThat(slices).extracting(VocabSlice::size).containsExactly(84, 84, 84, 84, 84, 80);
    assertThat(slices).extracting(VocabSlice::numPaddingRows).containsExactly(0, 0, 0, 0, 0, 4);
    for (int r = 1; r < slices.size(); r++) {
      assertThat(slices.get(r).start()).isEqualTo(slices.get(r - 1).end());
    }
    // a dividing size has no padding at all
    assertThat(vocabSlices(512, 8)).extracting(VocabSlice::size).containsOnly(64);
  }

  @Test
  void aVocabularyThatWouldLeaveARankOnlyPaddingIsRefused() {
    // 9 over 4: 3 rows per rank, so rank 3 would start at id 9
    assertThatThrownBy(() -> new TensorParallelRank(0, 4).vocab(9))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("vocab_size (9) is too small for the tensor-parallel size (4): at 3 rows per rank the last rank "
            + "would hold only padding; use fewer ranks");
  }

  @Test
  void kvHeadsAreSplitWhenTheyAreAtLeastTheRanksAndReplicatedWhenFewer() {
    // 8 query heads, 4 kv heads over 2: two kv heads each
    assertThat(new TensorParallelRank(1, 2).kvHeads(8, 4)).isEqualTo(new IndexRange(2, 4));
    // over 8: one query head each, kv head h/2 replicated on ranks 2h and 2h+1
    List<IndexRange> eight = new ArrayList<>();
    for (int r = 0; r < 8; r++) {
      eight.add(new TensorParallelRank(r, 8).kvHeads(8, 4));
    }
    assertThat(eight).extracting(IndexRange::start).containsExactly(0, 0, 1, 1, 2, 2, 3, 3);
    assertThat(eight).extracting(IndexRange::size).containsOnly(1);
    // 8 heads, 2 kv heads over 4: query heads [2r, 2r + 2) all use kv head r / 2
    for (int r = 0; r < 4; r++) {
      TensorParallelRank tp = new TensorParallelRank(r, 4);
      int groupSize = 8 / 2;
      assertThat(tp.kvHeads(8, 2).start()).isEqualTo(tp.heads(8).start() / groupSize)
          .isEqualTo((tp.heads(8).end() - 1) / groupSize);
    }
  }

  @Test
  void headCountsTheSizeCannotSplitAreRefusedNamingBothNumbers() {
    assertThatThrownBy(() -> new TensorParallelRank(0, 3).heads(8))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("num_attention_heads (8) must be divisible by the tensor-parallel size (3)");
    // 12 heads split over 4, but 6 kv heads neither divide by 4 nor divide 4
    assertThatThrownBy(() -> new TensorParallelRank(0, 4).kvHeads(12, 6))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageStartingWith("num_key_value_heads (6) and the tensor-parallel size (4) must divide one another");
    // 12 heads over 6, 4 kv heads: 6 is no multiple of 4
    assertThatThrownBy(() -> new TensorParallelRank(0, 6).kvHeads(12, 4))
        .hasMessageStartingWith("num_key_value_heads (4) and the tensor-parallel size (6) must divide one another");
  }

  @Test
  void evenSharesCoverEveryFeatureOnceAndDifferByAtMostOne() {
    // stories260K's intermediate_size over 8 ranks
    List<IndexRange> shares = new ArrayList<>();
    for (int r = 0; r < 8; r++) {
      shares.add(new TensorParallelRank(r, 8).evenShare("intermediate_size", 172));
    }
    assertThat(shares).extracting(IndexRange::size).containsExactly(21, 22, 21, 22, 21, 22, 21, 22)
        .satisfies(sizes -> assertThat(sizes.stream().mapToInt(Integer::intValue).sum()).isEqualTo(172));
    assertThat(shares.getFirst().start()).isZero();
    assertThat(shares.getLast().end()).isEqualTo(172);
    assertThatThrownBy(() -> new TensorParallelRank(0, 8).evenShare("intermediate_size", 5))
        .hasMessage("intermediate_size (5) must be at least the tensor-parallel size (8)");
  }
}
