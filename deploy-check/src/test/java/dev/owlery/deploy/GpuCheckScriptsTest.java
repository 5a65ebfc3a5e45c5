package dev.owlery.deploy;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;

/**
 * deploy/gpu: the runtime build-bundle.sh links holds every module device-check.sh's java adds,
 * the bundle is git-ignored and is what the README's device-tool call carries, and the check's
 * own time limit fits inside that call's timeout; without a GPU the check ends at once, saying so.
 */
class GpuCheckScriptsTest {

  private final String build = DeployFiles.text(DeployFiles.deploy("gpu/build-bundle.sh"));
  private final String check = DeployFiles.text(DeployFiles.deploy("gpu/device-check.sh"));
  private final String readme = DeployFiles.text(DeployFiles.deploy("gpu/README.md"));

  @Test
  void theRuntimeLinksEveryModuleTheCheckAdds() {
    List<String> linked = Arrays.asList(assignment(build, "MODULES").split(","));
    Set<String> added = new TreeSet<>();
    Matcher m = Pattern.compile("--add-modules ([a-z.,]+)").matcher(check);
    while (m.find()) {
      added.addAll(Arrays.asList(m.group(1).split(",")));
    }
    assertThat(added).contains("jdk.incubator.vector");
    assertThat(linked).containsAll(added).contains("java.base", "jdk.unsupported");
    assertThat(build).contains("--add-modules \"$MODULES\"");
    assertThat(readme).contains("`" + assignment(build, "MODULES") + "`");
  }

  @Test
  void theBundleIsIgnoredAndIsWhatTheReadmesCallCarries() {
    assertThat(build).contains("bundle=$root/deploy/gpu/bundle");
    assertThat(check).contains("bundle=$root/deploy/gpu/bundle");
    assertThat(DeployFiles.text(DeployFiles.root().resolve(".gitignore")).lines()).contains("/deploy/gpu/bundle/");
    assertThat(readme).contains("`run` with command `bash deploy/gpu/device-check.sh $OUT`",
        "carry `[\"deploy/gpu/bundle\"]`");
  }

  @Test
  void theChecksOwnLimitEndsInsideTheDeviceToolsTimeout() {
    Matcher timeout = Pattern.compile("timeout_s `(\\d+)`").matcher(readme);
    assertThat(timeout.find()).as("the README names timeout_s").isTrue();
    int timeoutSeconds = Integer.parseInt(timeout.group(1));
    int checkLimit = Integer.parseInt(assignment(check, "CHECK_LIMIT").replaceAll("\\$\\{CHECK_LIMIT:-(\\d+)}", "$1"));
    // One command may run 600 s at most; the summary is written after the last step, so leave a minute.
    assertThat(timeoutSeconds).isLessThanOrEqualTo(600);
    assertThat(checkLimit).isLessThanOrEqualTo(timeoutSeconds - 60);
    assertThat(readme).contains("caps itself at " + checkLimit + " s");
  }

  @Test
  void withoutAGpuTheCheckSaysSoInItsSummaryAndExits3(@TempDir Path out) throws Exception {
    ProcessBuilder builder = new ProcessBuilder("bash", DeployFiles.deploy("gpu/device-check.sh").toString(),
        out.toString()).redirectErrorStream(true).redirectOutput(out.resolve("stdout").toFile());
    builder.environment().put("NVIDIA_SMI", out.resolve("no-such-nvidia-smi").toString());
    builder.environment().put("TMPDIR", out.toString());
    Process process = builder.start();

    assertThat(process.waitFor(60, TimeUnit.SECONDS)).as("the check ended").isTrue();
    assertThat(process.exitValue()).as(Files.readString(out.resolve("stdout"))).isEqualTo(3);
    assertThat(Files.readString(out.resolve("summary.txt"))).contains("result: no GPU (exit 3)");
    JsonNode summary = DeployFiles.json(out.resolve("summary.json"));
    assertThat(summary.get("exit_status").asInt()).isEqualTo(3);
    assertThat(summary.get("gpu").asBoolean()).isFalse();
    Map<String, String> statuses = new TreeMap<>();
    summary.get("steps").forEach(step -> statuses.put(step.get("step").asString(), step.get("status").asString()));
    assertThat(statuses).containsEntry("gpu", "no-gpu").containsEntry("kernels", "no-gpu")
        .containsEntry("parity", "no-gpu").containsEntry("bench", "not-built").containsKey("runtime");
    assertThat(summary.get("steps").get(0).get("detail").asString()).isEqualTo("no GPU: nvidia-smi is not installed");
    assertThat(check).contains("dev.owlery.engine.cuda.check.ParityCheck \"$out/parity\" \"$root/testdata\"");
  }

  /** The value of a shell variable's one assignment, {@code NAME=value} at the start of a line. */
  private static String assignment(String script, String name) {
    Matcher m = Pattern.compile("(?m)^" + name + "=(\\S+)$").matcher(script);
    assertThat(m.find()).as("%s= in the script", name).isTrue();
    return m.group(1);
  }
}
