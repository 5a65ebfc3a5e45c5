package dev.owlery.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.owlery.engine.testing.Fixtures;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code owlery bench} at toy sizes: every section prints its rows, with the weight formats asked
 * for and decode as a share of the bandwidth probe. The figures themselves are not asserted: they
 * are measurements of whatever machine runs the test.
 */
class BenchCommandTest {

  @Test
  void printsBandwidthMatmulAndModelRowsForEachWeightFormat() {
    CliRun run = CliRun.of("bench", "--threads", "1,2", "--rows", "64", "--cols", "96", "--dtypes", "F16,Q8_0",
        "--matmul-tokens", "1,64", "--bandwidth-mib", "8", "--model", Fixtures.stories260k().toString(),
        "--weights", "mapped,q8_0", "--prompt-tokens", "8", "--decode-tokens", "2", "--reference-tokens", "1",
        "--rounds", "3", "--decoder-kernels", "vector,native");

    assertThat(run.exitCode()).as(run.err()).isZero();
    List<String> lines = run.out().lines().toList();
    assertThat(lines).anyMatch(l -> l.startsWith("memory read bandwidth (vectorised sum of 8 MiB"));
    assertThat(lines).anyMatch(l -> l.matches("\\s+2\\s+\\d+\\.\\d\\d"));
    for (String dtype : List.of("F16", "Q8_0")) {
      for (String tokens : List.of("1", "64")) {
        assertThat(lines).as("%s at %s tokens", dtype, tokens)
            .anyMatch(l -> l.matches(dtype + "\\s+" + tokens + "\\s+vector-\\d+\\s+2\\s+.*x"));
        assertThat(lines).as("%s at %s tokens, native", dtype, tokens)
            .anyMatch(l -> l.matches(dtype + "\\s+" + tokens + "\\s+native-\\w+\\s+2\\s+.*x"));
      }
    }
    assertThat(lines).anyMatch(l -> l.matches("scalar\\s+mapped\\s+1\\s+.*"));
    for (String format : List.of("mapped", "q8_0")) {
      for (String kernels : List.of("vector-\\d+", "native-\\w+")) {
        assertThat(lines).as("model row with %s weights, %s", format, kernels).anyMatch(l -> l.matches(
            kernels + "\\s+" + format + "\\s+2\\s+[\\d.]+\\s+[\\d.]+\\s+.*\\d+%\\s+\\d+\\.\\d%"));
      }
      // one ratio per round, each the two thread counts timed back to back, and their median
      assertThat(lines).as("prefill scaling with %s weights", format)
          .anyMatch(l -> l.matches("prefill " + format + ", 2 threads / 1: \\d+\\.\\d\\dx \\(median of the rounds: "
              + "\\d+\\.\\d\\d \\d+\\.\\d\\d \\d+\\.\\d\\d\\)"));
    }
    assertThat(lines).anyMatch(l -> l.contains("each figure the median of 3 round(s)"));
  }

  @Test
  void batchedDecodeSplitsItsStepTimeIntoMatmulsAttentionAndTheRest() {
    CliRun run = CliRun.of("bench", "--threads", "2", "--skip-matmul", "--bandwidth-mib", "0", "--model",
        Fixtures.stories260k().toString(), "--weights", "stored,q8_0", "--prompt-tokens", "4", "--decode-tokens", "3",
        "--reference-tokens", "1", "--batch", "5", "--batch-prompt", "6");

    assertThat(run.exitCode()).as(run.err()).isZero();
    List<String> lines = run.out().lines().toList();
    assertThat(lines).contains("batched decode: 5 sequences after 6 prompt tokens each, 3 steps of one token per sequence");
    for (String format : List.of("stored", "q8_0")) {
      String row = lines.stream().filter(l -> l.matches("vector-\\d+\\s+" + format + "\\s+2\\s+[\\d.]+\\s+[\\d.]+%.*"))
          .findFirst().orElseThrow(() -> new AssertionError("no batched row for " + format + " in\n" + run.out()));
      String[] cells = row.trim().split("\\s+");
      double matmul = Double.parseDouble(cells[4].replace("%", ""));
      double attention = Double.parseDouble(cells[5].replace("%", ""));
      double rest = Double.parseDouble(cells[6].replace("%", ""));
      assertThat(Double.parseDouble(cells[3])).as(row).isPositive();
      assertThat(matmul).as(row).isBetween(0.1, 100.0);
      assertThat(attention).as(row).isBetween(0.0, 100.0);
      assertThat(matmul + attention + rest).as(row).isCloseTo(100.0, org.assertj.core.data.Offset.offset(0.2));
    }
  }

  @Test
  void anUnknownWeightFormatNamesTheChoices() {
    CliRun run = CliRun.of("bench", "--weights", "q4_k", "--skip-matmul", "--bandwidth-mib", "0");

    assertThat(run.exitCode()).isEqualTo(2);
    assertThat(run.err()).contains("--weights must be one of mapped, stored, f16, bf16, q8_0, q4_0; got \"q4_k\"");
  }

  @Test
  void coordinatorStepPrintsItsTimeAndTheBytesOfARanksAnswerWithRowsAndWithCandidates() {
    CliRun run = CliRun.of("bench", "--model", Fixtures.tinyOwl2().toString(), "--coordinator-step", "8",
        "--coordinator-ranks", "2");

    assertThat(run.exitCode()).as(run.err()).isZero();
    List<String> lines = run.out().lines().toList();
    assertThat(lines).anyMatch(l -> l.startsWith(
        "coordinator's work on one decode step: 8 sequences, vocabulary 32000 over 2 ranks, mean of 50 steps, sampling on"));
    for (String workload : List.of("greedy", "top-k 50")) {
      String row = lines.stream().filter(l -> l.startsWith(workload + " ")).findFirst()
          .orElseThrow(() -> new AssertionError("no row for " + workload + " in\n" + run.out()));
      String[] cells = row.substring(workload.length()).trim().split("\\s+");
      assertThat(Double.parseDouble(cells[0])).as(row).isPositive();
      assertThat(Double.parseDouble(cells[1])).as(row).isPositive();
      // 8 rows of 16,000 float32 logits against a few (id, logit) pairs per row
      assertThat(Long.parseLong(cells[2])).as(row).isGreaterThan(8L * 16_000 * 4);
      assertThat(Long.parseLong(cells[3])).as(row).isLessThan(8L * 16_000 * 4 / 20);
    }
  }

  @Test
  void allReducePrintsGrpcAndSharedMemoryTimesSideBySide(@TempDir Path shm) {
    CliRun run = CliRun.of("bench", "--all-reduce", "3", "--all-reduce-floats", "16,1000", "--all-reduce-iterations",
        "20", "--all-reduce-dir", shm.toString());

    assertThat(run.exitCode()).as(run.err()).isZero();
    List<String> lines = run.out().lines().toList();
    assertThat(lines).anyMatch(l -> l.startsWith("all-reduce on this host: 3 ranks"));
    for (String floats : List.of("16", "1000")) {
      String row = lines.stream().filter(l -> l.trim().startsWith(floats + " ")).findFirst()
          .orElseThrow(() -> new AssertionError("no row for " + floats + " floats in\n" + run.out()));
      // floats, grpc median (mean), shared median (mean), ratio
      String[] cells = row.replace("(", " ").replace(")", " ").replace("x", " ").trim().split("\\s+");
      assertThat(cells).as(row).hasSize(6);
      for (int c = 1; c < 6; c++) {
        assertThat(Double.parseDouble(cells[c])).as(row).isPositive();
      }
    }
    assertThat(shm).isEmptyDirectory(); // each rank's file is gone
  }

  @Test
  void theModelNeedsAtLeastOneRound() {
    CliRun run = CliRun.of("bench", "--model", Fixtures.stories260k().toString(), "--rounds", "0");

    assertThat(run.exitCode()).isEqualTo(2);
    assertThat(run.err()).contains("--rounds must be >= 1, got 0");
  }

  @Test
  void visionNeedsAtLeastOneTimedImage() {
    CliRun run = CliRun.of("bench", "--synthetic-vision", "--vision-images", "0", "--skip-matmul", "--bandwidth-mib", "0");

    assertThat(run.exitCode()).isEqualTo(2);
    assertThat(run.err()).contains("--vision-images must be >= 1, got 0");
  }

  @Test
  void decoderKernelsAreVectorOrNativeOnes() {
    CliRun run = CliRun.of("bench", "--decoder-kernels", "vector,scalar", "--bandwidth-mib", "0");

    assertThat(run.exitCode()).isEqualTo(2);
    assertThat(run.err()).contains("Invalid value for option '--decoder-kernels'")
        .contains("the scalar reference is timed anyway; name auto, vector, native or native-bf16");
  }

  @Test
  void visionKernelsAreNamedFromTheSetsThereAre() {
    CliRun run = CliRun.of("bench", "--synthetic-vision", "--vision-kernels", "vector,amx", "--skip-matmul",
        "--bandwidth-mib", "0");

    assertThat(run.exitCode()).isEqualTo(2);
    assertThat(run.err()).contains("Invalid value for option '--vision-kernels'")
        .contains("kernels must be one of vector, onednn-bf16, got \"amx\"");
  }

  @Test
  void theScalarReferenceNeedsAtLeastOneToken() {
    CliRun run = CliRun.of("bench", "--reference-tokens", "0", "--skip-matmul", "--bandwidth-mib", "0");

    assertThat(run.exitCode()).isEqualTo(2);
    assertThat(run.err()).contains("--reference-tokens must be >= 1, got 0");
  }

  @Test
  void allReduceNeedsTwoRanks() {
    CliRun run = CliRun.of("bench", "--all-reduce", "1");

    assertThat(run.exitCode()).isEqualTo(2);
    assertThat(run.err()).contains("--all-reduce needs at least 2 ranks");
  }
}
