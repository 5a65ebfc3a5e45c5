package dev.owlery.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.owlery.cli.demo.DemoModel;
import dev.owlery.engine.config.ModelConfig;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code owlery demo} on a fresh machine: writes the demo model, starts a local cluster and
 * answers about the picture; the same question in-process gives the same answer.
 */
class DemoCommandTest {

  @Test
  void writesTheDemoModelOnceAndAnswersAQuestionAboutAPicture(@TempDir Path tmp) throws IOException {
    Path dir = tmp.resolve("demo-model");

    CliRun first = CliRun.of("demo", "--model-dir", dir.toString(), "--max-new-tokens", "6");
    long written = Files.getLastModifiedTime(dir.resolve("model.safetensors")).toMillis();
    CliRun second = CliRun.of("demo", "--model-dir", dir.toString(), "--max-new-tokens", "6", "--in-process");

    assertThat(first.exitCode()).as(first.err()).isZero();
    assertThat(first.err()).contains("writing the demo model");
    assertThat(first.out()).startsWith("USER: What is in this picture?\nASSISTANT: ");
    assertThat(first.err()).contains("cluster ready");
    assertThat(first.err()).containsPattern("\\d+ prompt positions \\(9 image rows\\), \\d+ tokens generated");
    assertThat(second.err()).doesNotContain("writing the demo model");
    assertThat(Files.getLastModifiedTime(dir.resolve("model.safetensors")).toMillis()).isEqualTo(written);
    // Greedy on fixed weights: the cluster and one process give the same answer.
    assertThat(second.out()).isEqualTo(first.out());
    ModelConfig config = ModelConfig.load(dir);
    assertThat(config.multimodal()).isTrue();
    assertThat(DemoModel.isPresent(dir)).isTrue();
  }
}
