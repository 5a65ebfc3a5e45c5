package dev.owlery.engine.cuda.check;

import static org.assertj.core.api.Assertions.assertThat;

import dev.owlery.engine.cuda.runtime.CpuTwinDevice;
import dev.owlery.engine.testing.Fixtures;
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
 * ParityCheck as the GPU check runs it: its cases on the CPU twins of the kernels (what the GPU run
 * repeats with the real kernels), and its one-line refusal in its own JVM where there is no device.
 */
class ParityCheckTest {

  @Test
  void onTheCpuTwinsEveryParityCasePasses(@TempDir Path folder) throws Exception {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    int status;
    try (CpuTwinDevice twins = new CpuTwinDevice()) {
      status = ParityCheck.check(twins, CpuTwinDevice::new, Fixtures.root(), folder, new PrintStream(out, true, StandardCharsets.UTF_8));
    }
    String report = out.toString(StandardCharsets.UTF_8);
    System.out.print(report);
    assertThat(status).as(report).isEqualTo(KernelCheck.EXIT_PASSED);
    List<String> cases = Files.readAllLines(folder.resolve("parity.jsonl"));
    assertThat(cases).hasSize(10).allSatisfy(line -> assertThat(line).contains("\"pass\":true"));
    assertThat(cases.getFirst()).startsWith("{\"case\":\"tiny-owl2\",\"maxAbsError\":");
    assertThat(Files.readAllLines(folder.resolve("summary.txt"))).first().isEqualTo("parity check on cpu kernel twins");
    assertThat(report).contains("greedy ids equal to the official generate").contains("64 of 64 greedy ids equal")
        .contains("tiny-owl2-tp2").contains("tiny-owl2-graphs").endsWith("all 10 parity cases passed\n");
  }

  @Test
  void withoutACudaDeviceTheCheckPrintsOneLineAndExitsWithTheNoDeviceStatus(@TempDir Path folder) throws Exception {
    NoDeviceRun.assertSaysNoDevice(ParityCheck.class, folder.resolve("out"), Fixtures.root().toString());
    assertThat(folder.resolve("out/parity.jsonl")).doesNotExist();
  }

  @Test
  void withoutTheFixturesTheCheckSaysWhereItLooked(@TempDir Path folder) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    int status = ParityCheck.run(new String[] {folder.resolve("out").toString(), folder.toString()},
        new PrintStream(out, true, StandardCharsets.UTF_8));
    assertThat(status).isEqualTo(KernelCheck.EXIT_USAGE);
    assertThat(out.toString(StandardCharsets.UTF_8)).startsWith("no fixtures at " + folder.toAbsolutePath());
  }
}
