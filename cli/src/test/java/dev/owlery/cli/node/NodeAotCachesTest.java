package dev.owlery.cli.node;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The node JVMs of this module's tests start from the AOT caches {@link NodeAotTraining} made
 * before them: a node of each role maps its role's cache and takes its classes from it, this
 * module's own included (packed into a jar for the cache; picocli's are not: the JDK caches no class
 * of a class file version that old); a cache that does not match is ignored without a word in the
 * node's output.
 */
class NodeAotCachesTest {

  @ParameterizedTest
  @ValueSource(strings = {"coordinator", "shard-worker", "vision-worker"})
  void aNodeTakesItsClassesFromItsRolesCache(String role) throws Exception {
    Path folder = Path.of(System.getProperty(NodeAotCaches.FOLDER, "(no cache folder: NodeAotTraining failed)"));
    List<String> command = LocalCluster.nodeCommand(role, List.of("-Xlog:aot=info", "-Xlog:class+load=info"));
    command.add("--help");

    Run run = run(command);

    assertThat(run.status()).as(run.output()).isZero();
    assertThat(run.output()).contains("Opened AOT cache " + NodeAotCaches.cache(folder, role))
        .contains("dev.owlery.cli.Owlery source: shared objects file")
        .contains("dev.owlery.proto.v1.NodeStatus source: shared objects file")
        .contains("com.google.protobuf.MessageLite source: shared objects file")
        .doesNotContain("[error").contains("Usage: owlery " + role);
  }

  @ParameterizedTest
  @ValueSource(strings = {"coordinator", "shard-worker"})
  void aCacheMadeWithAnotherClasspathIsIgnoredSilently(String role) throws Exception {
    List<String> command = new ArrayList<>(LocalCluster.nodeCommand(role, List.of()));
    assertThat(command).anyMatch(option -> option.startsWith("-XX:AOTCache="));
    // this JVM's classpath has folders (this module's classes): not the one the cache was made with
    command.set(command.indexOf("-cp") + 1, System.getProperty("java.class.path"));
    command.add("--help");

    Run run = run(command);

    assertThat(run.status()).as(run.output()).isZero();
    assertThat(run.output()).startsWith("Usage: owlery " + role).doesNotContain("aot").doesNotContain("AOT");
  }

  private record Run(int status, String output) {}

  private static Run run(List<String> command) throws IOException, InterruptedException {
    Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
    String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8)
        .replace("WARNING: Using incubator modules: jdk.incubator.vector\n", "");
    return new Run(process.waitFor(), output);
  }
}
