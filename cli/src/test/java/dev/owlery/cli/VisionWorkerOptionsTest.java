package dev.owlery.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.owlery.engine.testing.Fixtures;
import org.junit.jupiter.api.Test;

/** {@code owlery vision-worker --device} and {@code --max-batch-images}: bad values refused in one line. */
class VisionWorkerOptionsTest {

  private static final String MODEL = Fixtures.tinyOwl2().toString();

  @Test
  void aPassOfNoImagesIsRefused() {
    CliRun run = CliRun.of("vision-worker", "--node-id", "vision-0", "--model", MODEL, "--max-batch-images", "0");

    assertThat(run.exitCode()).isEqualTo(2);
    assertThat(run.out()).isEmpty();
    assertThat(run.err()).isEqualTo(
        "owlery: error: --max-batch-images must be >= 1 (images per device pass). Given: 0%n".formatted());
  }

  @Test
  void anUnknownDeviceIsRefusedNamingTheForms() {
    CliRun run = CliRun.of("vision-worker", "--node-id", "vision-0", "--model", MODEL, "--device", "gpu");

    assertThat(run.exitCode()).isEqualTo(2);
    assertThat(run.err()).startsWith("owlery: error: Invalid value for option '--device': --device must be cpu, cuda, "
        + "cuda:N (N a CUDA device index, 0 for the first) or cuda-twin (the CUDA path on the CPU, slow, for tests). "
        + "Given: \"gpu\"");
  }
}
