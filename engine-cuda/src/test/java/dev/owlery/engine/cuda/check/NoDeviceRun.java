package dev.owlery.engine.cuda.check;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** Runs a GPU check's main in its own JVM with no CUDA device visible, as on this machine. */
final class NoDeviceRun {

  private NoDeviceRun() {}

  /**
   * Runs {@code main} with {@code args} (the output folder first) and checks the no-device contract:
   * exit {@link KernelCheck#EXIT_NO_DEVICE}, one line "no CUDA device: ..." on stdout and as the
   * summary, no exception on stderr.
   */
  static void assertSaysNoDevice(Class<?> main, Path outFolder, String... more) throws Exception {
    Path java = Path.of(System.getProperty("java.home"), "bin", "java");
    List<String> command = new ArrayList<>(List.of(java.toString(), "--enable-native-access=ALL-UNNAMED", "-cp",
        System.getProperty("java.class.path"), main.getName(), outFolder.toString()));
    command.addAll(List.of(more));
    ProcessBuilder builder = new ProcessBuilder(command);
    builder.environment().put("CUDA_VISIBLE_DEVICES", "");
    Process process = builder.start();
    assertThat(process.waitFor(60, TimeUnit.SECONDS)).as("%s exits", main.getSimpleName()).isTrue();
    String stdout = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    String stderr = new String(process.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(process.exitValue()).as("exit status; stdout: %s stderr: %s", stdout, stderr)
        .isEqualTo(KernelCheck.EXIT_NO_DEVICE);
    List<String> lines = stdout.lines().toList();
    assertThat(lines).hasSize(1);
    assertThat(lines.getFirst()).startsWith("no CUDA device: ")
        .containsAnyOf("libcuda.so.1 is not installed", "cuInit failed", "reports no CUDA device");
    assertThat(stderr).doesNotContain("Exception");
    assertThat(Files.readAllLines(outFolder.resolve("summary.txt"))).containsExactly(lines.getFirst());
  }
}
