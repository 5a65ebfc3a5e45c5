package dev.owlery.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Two {@code ./owlery} commands started together on a stale build: the second waits for the
 * first one's build instead of running Maven in the same tree, then finds the build fresh. The
 * real launcher runs in a copy of the repository whose {@code mvnw} and {@code java} are stand-ins.
 */
class LauncherBuildLockTest {

  @Test
  void aSecondOwleryWaitsForTheFirstOnesBuildAndDoesNotBuildAgain(@TempDir Path tree) throws Exception {
    Files.copy(repositoryRoot().resolve("owlery"), tree.resolve("owlery"));
    script(tree.resolve("scripts/java25.sh"), "export JAVA_HOME=\"$root/fake-jdk\"");
    script(tree.resolve("fake-jdk/bin/java"), "echo \"java ${*: -2}\"");
    // The build holds on until the second owlery says it waits (10 s at most), so that the two
    // overlap whatever the machine's load; without the lock the second builds meanwhile.
    script(tree.resolve("mvnw"), """
        echo build >> builds.log
        for i in $(seq 100); do grep -qs 'waiting for it' second.err && break; sleep 0.1; done
        mkdir -p cli/target/lib && touch cli/target/owlery-cli.jar""");

    Process first = launcher(tree, "first");
    await().atMost(Duration.ofSeconds(10)).until(() -> Files.exists(tree.resolve("builds.log")));
    Process second = launcher(tree, "second");

    assertThat(first.waitFor(30, TimeUnit.SECONDS)).isTrue();
    assertThat(second.waitFor(30, TimeUnit.SECONDS)).isTrue();
    assertThat(first.exitValue()).as(Files.readString(tree.resolve("first.err"))).isZero();
    assertThat(second.exitValue()).as(Files.readString(tree.resolve("second.err"))).isZero();
    assertThat(Files.readAllLines(tree.resolve("builds.log"))).containsExactly("build");
    assertThat(Files.readString(tree.resolve("second.err")))
        .isEqualTo("owlery: another owlery is building the project; waiting for it...\n");
    assertThat(Files.readString(tree.resolve("first.out"))).isEqualTo("java dev.owlery.cli.Owlery --version\n");
    assertThat(Files.readString(tree.resolve("second.out"))).isEqualTo("java dev.owlery.cli.Owlery --version\n");
  }

  private static Process launcher(Path tree, String name) throws IOException {
    return new ProcessBuilder("bash", tree.resolve("owlery").toString(), "--version")
        .redirectOutput(tree.resolve(name + ".out").toFile())
        .redirectError(tree.resolve(name + ".err").toFile())
        .start();
  }

  private static void script(Path file, String body) throws IOException {
    Files.createDirectories(file.getParent());
    Files.writeString(file, "#!/usr/bin/env bash\n" + body + "\n");
    Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rwxr-xr-x"));
  }

  private static Path repositoryRoot() {
    for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
      if (Files.isRegularFile(dir.resolve("owlery")) && Files.isRegularFile(dir.resolve("mvnw"))) {
        return dir;
      }
    }
    throw new IllegalStateException("no repository root (with owlery and mvnw) above " + Path.of("").toAbsolutePath());
  }
}
