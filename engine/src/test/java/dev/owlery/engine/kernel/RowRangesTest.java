package dev.owlery.engine.kernel;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CyclicBarrier;
import org.junit.jupiter.api.Test;

/** {@link RowRanges}: each thread streams its own range front to back, then takes from the others' backs. */
class RowRangesTest {

  private static List<String> claimAll(RowRanges ranges, int part, int chunk) {
    List<String> claims = new ArrayList<>();
    for (long c = ranges.claim(part, chunk); c >= 0; c = ranges.claim(part, chunk)) {
      claims.add(RowRanges.from(c) + "-" + RowRanges.to(c));
    }
    return claims;
  }

  @Test
  void aThreadAloneReadsItsOwnRangeInOrderThenHalvesOfTheOthersFromTheirBacks() {
    RowRanges ranges = new RowRanges(2);
    ranges.reset(100, 2, 16); // ranges of whole granules: [0, 64) and [64, 100)
    assertThat(ranges.ownPart()).isZero();
    assertThat(claimAll(ranges, 0, 32)).containsExactly("0-32", "32-64", "68-100", "64-68");
  }

  @Test
  void aThreadBeyondTheRangesOnlyTakesFromTheOthers() {
    RowRanges ranges = new RowRanges(3);
    ranges.reset(96, 2, 16); // [0, 48) and [48, 96); a third thread owns nothing
    assertThat(ranges.ownPart()).isZero();
    assertThat(ranges.ownPart()).isEqualTo(1);
    assertThat(ranges.ownPart()).isEqualTo(2);
    assertThat(claimAll(ranges, 2, 16)).containsExactly("16-48", "64-96", "0-16", "48-64");
  }

  @Test
  void fewerRowsThanThePartsLeaveTheLastRangesEmpty() {
    RowRanges ranges = new RowRanges(4);
    ranges.reset(20, 4, 16); // [0, 16), [16, 20), then two empty ranges
    assertThat(claimAll(ranges, 3, 32)).containsExactly("0-16", "16-20");
    ranges.reset(0, 4, 16);
    assertThat(ranges.claim(0, 32)).isEqualTo(-1);
  }

  @Test
  void concurrentOwnersAndThievesClaimEveryRowExactlyOnce() throws Exception {
    int threads = 4;
    RowRanges ranges = new RowRanges(threads);
    SplittableRandom seeds = new SplittableRandom(5);
    for (int trial = 0; trial < 200; trial++) {
      int rows = 1 + seeds.nextInt(2_000);
      int parts = 1 + seeds.nextInt(threads);
      ranges.reset(rows, parts, 16);
      CyclicBarrier start = new CyclicBarrier(threads);
      BitSet[] claimed = new BitSet[threads];
      Thread[] workers = new Thread[threads];
      Throwable[] failure = new Throwable[1];
      for (int t = 0; t < threads; t++) {
        int index = t;
        long seed = seeds.nextLong();
        claimed[t] = new BitSet(rows);
        workers[t] = new Thread(() -> {
          SplittableRandom random = new SplittableRandom(seed);
          try {
            start.await();
            int part = ranges.ownPart();
            for (long c = ranges.claim(part, 32); c >= 0; c = ranges.claim(part, 32)) {
              assertThat(RowRanges.from(c)).isLessThan(RowRanges.to(c));
              assertThat(claimed[index].get(RowRanges.from(c), RowRanges.to(c)).isEmpty()).isTrue();
              claimed[index].set(RowRanges.from(c), RowRanges.to(c));
              if (random.nextInt(4) == 0) {
                Thread.yield(); // a slow thread: the others take from its range
              }
            }
          } catch (Throwable e) {
            synchronized (failure) {
              failure[0] = e;
            }
          }
        });
        workers[t].start();
      }
      for (Thread w : workers) {
        w.join();
      }
      assertThat(failure[0]).isNull();
      BitSet all = new BitSet(rows);
      for (BitSet c : claimed) {
        BitSet overlap = (BitSet) all.clone();
        overlap.and(c);
        assertThat(overlap.isEmpty()).as("rows claimed twice, %d rows in %d parts", rows, parts).isTrue();
        all.or(c);
      }
      assertThat(all.cardinality()).as("rows claimed, %d rows in %d parts", rows, parts).isEqualTo(rows);
      assertThat(all.nextClearBit(0)).isEqualTo(rows);
    }
  }

  @Test
  void partsMustFitTheRanges() {
    RowRanges ranges = new RowRanges(2);
    assertThatThrownBy(() -> ranges.reset(10, 3, 16)).isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("[1, 2]");
    assertThatThrownBy(() -> ranges.reset(10, 0, 16)).isInstanceOf(IllegalArgumentException.class);
  }
}
