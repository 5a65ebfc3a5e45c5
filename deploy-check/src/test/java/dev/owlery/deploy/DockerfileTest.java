package dev.owlery.deploy;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * deploy/docker/Dockerfile builds as the README says, runs on a jlink'd runtime holding every module
 * the ./owlery launcher's JVM flags name, as a non-root user, through that same launcher.
 */
class DockerfileTest {

  private final List<String> lines = joinContinuations(DeployFiles.text(DeployFiles.deploy("docker/Dockerfile")));

  @Test
  void theBuildStageRunsTheReadmesBuildCommandOnAJdk25() {
    List<String> build = stage(0);
    assertThat(build.getFirst()).isEqualTo("FROM eclipse-temurin:25-jdk AS build");
    List<String> mavenRuns = build.stream().filter(line -> line.startsWith("RUN ") && line.contains("./mvnw"))
        .map(line -> line.replaceFirst("^RUN (--mount=\\S+ )*", "")).toList();
    Set<String> readmeCommands = new TreeSet<>();
    Matcher m = Pattern.compile("`(\\./mvnw [^`]*)`").matcher(DeployFiles.text(DeployFiles.root().resolve("README.md")));
    while (m.find()) {
      readmeCommands.add(m.group(1));
    }
    assertThat(mavenRuns).hasSize(1);
    assertThat(readmeCommands).as("the README's ./mvnw commands").contains(mavenRuns.getFirst());
  }

  @Test
  void theRuntimeHoldsEveryModuleTheLaunchersFlagsName() {
    String launcher = DeployFiles.text(DeployFiles.root().resolve("owlery"));
    Set<String> named = new TreeSet<>();
    Matcher m = Pattern.compile("--add-(modules|exports|opens) ([a-z]+(?:\\.[a-z]+)+)").matcher(launcher);
    while (m.find()) {
      named.add(m.group(2));
    }
    assertThat(named).contains("jdk.incubator.vector", "java.base", "java.management", "jdk.management");
    String jlink = stage(0).stream().filter(line -> line.startsWith("RUN jlink ")).findFirst().orElseThrow();
    Matcher modules = Pattern.compile("--add-modules (\\S+)").matcher(jlink);
    assertThat(modules.find()).isTrue();
    assertThat(Arrays.asList(modules.group(1).split(","))).containsAll(named);
    Matcher output = Pattern.compile("--output (\\S+)").matcher(jlink);
    assertThat(output.find()).isTrue();
    assertThat(stage(1)).contains("COPY --from=build " + output.group(1) + " " + output.group(1));
    assertThat(env("JAVA_HOME")).isEqualTo(output.group(1));
  }

  @Test
  void theImageRunsTheRepositorysLauncherAsANonRootUser() {
    List<String> run = stage(1);
    String user = run.stream().filter(line -> line.startsWith("USER ")).findFirst().orElseThrow();
    assertThat(user.substring(5).split(":")[0]).isNotIn("0", "root");
    assertThat(run).contains("ENTRYPOINT [\"/opt/owlery/owlery\"]");
    assertThat(run).contains("COPY --from=build /src/owlery /opt/owlery/owlery",
        "COPY --from=build /src/scripts/java25.sh /opt/owlery/scripts/java25.sh");
    assertThat(Files.isExecutable(DeployFiles.root().resolve("owlery"))).isTrue();
    // The launcher sources scripts/java25.sh next to itself and runs OWLERY_CLASSPATH as it is.
    String launcher = DeployFiles.text(DeployFiles.root().resolve("owlery"));
    assertThat(launcher).contains(". \"$root/scripts/java25.sh\"", "${OWLERY_CLASSPATH:-");
    assertThat(run).contains("COPY --from=build /src/cli/target/owlery-cli.jar /opt/owlery/lib/",
        "COPY --from=build /src/cli/target/lib/ /opt/owlery/lib/");
    assertThat(env("OWLERY_CLASSPATH")).isEqualTo("\"/opt/owlery/lib/*\"");
  }

  /**
   * The nodes' default kernels (auto) are native where a C compiler is: the runtime installs one and
   * keeps the compiled library under /tmp, the one folder the Kubernetes manifests mount writable.
   */
  @Test
  void theRuntimeCompilesTheNativeKernelsIntoAWritableFolder() {
    List<String> run = stage(1);
    assertThat(run.stream().filter(line -> line.startsWith("RUN apt-get update && apt-get install -y ")))
        .singleElement().satisfies(line -> assertThat(line.split("\\s+")).contains("gcc", "libc6-dev"));
    assertThat(env("OWLERY_NATIVE_CACHE")).startsWith("/tmp/");
    for (String role : List.of("shard-worker", "vision-worker")) {
      assertThat(DeployFiles.text(DeployFiles.deploy("kubernetes/base/" + role + ".yaml")))
          .as(role).contains("readOnlyRootFilesystem: true", "mountPath: /tmp");
    }
  }

  /** The lines of build stage {@code index} (0 = first FROM), its FROM line first. */
  private List<String> stage(int index) {
    List<List<String>> stages = new ArrayList<>();
    for (String line : lines) {
      if (line.startsWith("FROM ")) {
        stages.add(new ArrayList<>());
      }
      if (!stages.isEmpty()) {
        stages.getLast().add(line);
      }
    }
    assertThat(stages).as("stages of the Dockerfile").hasSize(2);
    return stages.get(index);
  }

  /** The value an ENV instruction of the last stage gives {@code name}. */
  private String env(String name) {
    Matcher m = Pattern.compile("(?:^ENV |\\s)" + name + "=(\\S+)").matcher(String.join("\n", stage(1)));
    assertThat(m.find()).as("ENV %s", name).isTrue();
    return m.group(1);
  }

  /** Instructions one per line: comments and blank lines dropped, backslash continuations joined. */
  private static List<String> joinContinuations(String dockerfile) {
    List<String> instructions = new ArrayList<>();
    StringBuilder current = new StringBuilder();
    for (String raw : dockerfile.split("\n")) {
      String line = raw.strip();
      if (line.startsWith("#") || line.isEmpty()) {
        continue;
      }
      current.append(current.isEmpty() ? "" : " ").append(line.endsWith("\\") ? line.substring(0, line.length() - 1).strip() : line);
      if (!line.endsWith("\\")) {
        instructions.add(current.toString());
        current.setLength(0);
      }
    }
    return instructions;
  }
}
