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

    // 24 tokens: the demo model produces its EOS after 22.
    CliRun first = CliRun.of("demo", "--model-dir", dir.toString(), "--max-new-tokens", "24");
    long written = Files.getLastModifiedTime(dir.resolve("model.safetensors")).toMillis();
    CliRun second = CliRun.of("demo", "--model-dir", dir.toString(), "--max-new-tokens", "24", "--in-process");

    assertThat(first.exitCode()).as(first.err()).isZero();
    assertThat(first.err()).contains("writing the demo model");
    assertThat(first.out()).startsWith("USER: What is in this picture?\nASSISTANT: ");
    assertThat(first.err()).contains("cluster ready");
    assertThat(first.err()).containsPattern("\\d+ prompt positions \\(9 image rows\\), \\d+ tokens generated");
    assertThat(second.err()).doesNotContain("writing the demo model");
    assertThat(Files.getLastModifiedTime(dir.resolve("model.safetensors")).toMillis()).isEqualTo(written);
    // Greedy on fixed weights: the cluster and one process give the same answer.
    assertThat(second.out()).isEqualTo(first.out());
    assertThat(first.err()).contains("finish reason stop_token");
    assertThat(second.err()).contains("finish reason stop_token");
    ModelConfig config = ModelConfig.load(dir);
    assertThat(config.multimodal()).isTrue();
    assertThat(DemoModel.isPresent(dir)).isTrue();
  }

  @Test
  void controlCharactersInTheAnswerAreEscapedOnATerminal(@TempDir Path tmp) {
    String[] demo = {"demo", "--model-dir", tmp.resolve("demo-model").toString(), "--max-new-tokens", "24", "--in-process"};

    CliRun plain = CliRun.of(demo);
    CliRun terminal = CliRun.of(concat(demo, "--terminal"));

    assertThat(plain.exitCode()).as(plain.err()).isZero();
    // The random weights answer with control characters, e.g. U+0005.
    assertThat(plain.out()).containsPattern("[\\x00-\\x08\\x0b-\\x1f]");
    assertThat(terminal.out()).isEqualTo(TerminalText.escape(plain.out()));
    assertThat(terminal.out()).doesNotContainPattern("[\\x00-\\x08\\x0b-\\x1f]").contains("\\u00");
  }

  private static String[] concat(String[] a, String... b) {
    String[] out = java.util.Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }
}
