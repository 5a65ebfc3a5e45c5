package dev.owlery.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.owlery.engine.onednn.testing.OneDnnTesting;
import dev.owlery.engine.tensor.WeightFormat;
import dev.owlery.engine.vision.SyntheticVisionTower;
import dev.owlery.visionworker.HostKernels;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The vision section of {@code owlery bench} at a toy geometry (17 tokens, so the oneDNN kernels
 * take the ViT's matmuls): one row per kernel set and thread count, the ratio to the first row.
 */
class VisionBenchTest {

  @BeforeAll
  static void oneDnn() {
    OneDnnTesting.library();
  }

  @Test
  void timesEachKernelSetAndThreadCountOnOneTower() {
    SyntheticVisionTower.Geometry toy = new SyntheticVisionTower.Geometry(56, 14, 64, 256, 2, 4, 8, 176, 2, 4, 64);
    StringWriter text = new StringWriter();
    new VisionBench(toy, List.of(WeightFormat.STORED, WeightFormat.BF16),
        List.of(HostKernels.VECTOR, HostKernels.ONEDNN_BF16), List.of(1, 2), 2)
        .run(new PrintWriter(text, true));

    List<String> lines = text.toString().lines().toList();
    assertThat(lines).anyMatch(l -> l.startsWith("vision tower (ViT 56 px / 14, 17 tokens, 2 layers of width 64; "
        + "abstractor 2 layers, 8 queries), random F16 weights; median of 2 images after one to warm up"));
    for (String format : List.of("stored", "bf16")) {
      List<String> rows = lines.stream().filter(l -> l.matches(".*\\s" + format + "\\s+[12]\\s+.*x")).toList();
      assertThat(rows).as("rows for %s in\n%s", format, text).hasSize(4);
      assertThat(rows.get(0)).matches("vector-\\d+\\s+" + format + "\\s+1\\s+\\d+\\.\\d{3}\\s+\\d+\\.\\d{3}\\s+\\d+\\.\\d{3}"
          + "\\s+1\\.00x");
      assertThat(rows.get(1)).matches("vector-\\d+\\s+" + format + "\\s+2\\s+.*\\d\\.\\d\\dx");
      assertThat(rows.get(2)).matches("onednn-bf16 \\(oneDNN [23]\\.\\d+\\.\\d+, \\S+\\)\\s+" + format + "\\s+1\\s+.*x");
      assertThat(rows.get(3)).matches("onednn-bf16 \\(oneDNN .*\\)\\s+" + format + "\\s+2\\s+.*x");
    }
  }
}
