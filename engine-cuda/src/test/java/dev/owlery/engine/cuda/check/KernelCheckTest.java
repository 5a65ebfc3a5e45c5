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
    NoDeviceRun.assertSaysNoDevice(KernelCheck.class, folder.resolve("out"));
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
