package dev.owlery.engine.cuda.check;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * KernelCheck as deploy/gpu/device-check.sh runs it, in its own JVM, where there is no CUDA device:
 * CUDA_VISIBLE_DEVICES is emptied for the child, so the driver (where one is installed) reports no
 * device, and on a machine without the NVIDIA driver libcuda.so.1 is missing; either way the check
 * must say so in one line and exit with its own status.
 */
class KernelCheckTest {

  @Test
  void withoutACudaDeviceTheCheckPrintsOneLineAndExitsWithTheNoDeviceStatus(@TempDir Path folder) throws Exception {
    Path java = Path.of(System.getProperty("java.home"), "bin", "java");
    ProcessBuilder builder = new ProcessBuilder(java.toString(), "--enable-native-access=ALL-UNNAMED", "-cp",
        System.getProperty("java.class.path"), KernelCheck.class.getName(), folder.resolve("out").toString())
        .redirectErrorStream(false);
    builder.environment().put("CUDA_VISIBLE_DEVICES", "");
    Process process = builder.start();
    assertThat(process.waitFor(60, TimeUnit.SECONDS)).as("KernelCheck exits").isTrue();
    String stdout = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    String stderr = new String(process.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);

    assertThat(process.exitValue()).as("exit status; stdout: %s stderr: %s", stdout, stderr)
        .isEqualTo(KernelCheck.EXIT_NO_DEVICE);
    List<String> lines = stdout.lines().toList();
    assertThat(lines).hasSize(1);
    assertThat(lines.getFirst()).startsWith("no CUDA device: ")
        .containsAnyOf("libcuda.so.1 is not installed", "cuInit failed", "reports no CUDA device");
    assertThat(stderr).doesNotContain("Exception");
    assertThat(Files.readAllLines(folder.resolve("out/summary.txt"))).containsExactly(lines.getFirst());
    assertThat(folder.resolve("out/kernels.jsonl")).doesNotExist();
  }

  @Test
  void withoutAnOutputFolderTheCheckPrintsItsUsage() {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    int status = KernelCheck.run(new String[0], new PrintStream(out, true, StandardCharsets.UTF_8));
    assertThat(status).isEqualTo(KernelCheck.EXIT_USAGE);
    assertThat(out.toString(StandardCharsets.UTF_8)).startsWith("usage: KernelCheck <output folder>");
  }
}
