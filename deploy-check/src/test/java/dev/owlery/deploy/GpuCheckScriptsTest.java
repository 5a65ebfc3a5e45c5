package dev.owlery.deploy;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
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
    Process process = startCheckWithoutGpu(out, Map.of());

    assertThat(process.waitFor(60, TimeUnit.SECONDS)).as("the check ended").isTrue();
    assertThat(process.exitValue()).as(Files.readString(out.resolve("stdout"))).isEqualTo(3);
    assertThat(Files.readString(out.resolve("summary.txt"))).contains("result: no GPU (exit 3)");
    JsonNode summary = DeployFiles.json(out.resolve("summary.json"));
    assertThat(summary.get("exit_status").asInt()).isEqualTo(3);
    assertThat(summary.get("gpu").asBoolean()).isFalse();
    Map<String, String> statuses = new TreeMap<>();
    summary.get("steps").forEach(step -> statuses.put(step.get("step").asString(), step.get("status").asString()));
    assertThat(statuses).containsEntry("gpu", "no-gpu").containsEntry("kernels", "no-gpu")
        .containsEntry("parity", "no-gpu").containsEntry("bench", "no-gpu").containsEntry("pytorch", "no-gpu")
        .containsEntry("vision", "no-gpu").containsEntry("torch-vision", "no-gpu").containsKey("runtime");
    assertThat(summary.get("bench").isArray()).as("the Owlery/PyTorch ratios, none without a GPU").isTrue();
    assertThat(summary.get("steps").get(0).get("detail").asString()).isEqualTo("no GPU: nvidia-smi is not installed");
    assertThat(check).contains("dev.owlery.engine.cuda.check.ParityCheck \"$out/parity\" \"$root/testdata\"");
    assertThat(check).contains("dev.owlery.engine.cuda.check.BenchCheck \"$bench\" --layers \"$BENCH_LAYERS\"",
        "deploy/gpu/torch_bench.py\" \"$bench/torch.jsonl\" --layers \"$BENCH_LAYERS\"",
        "dev.owlery.engine.cuda.check.VisionCheck \"$vision\" \"$root/testdata\"",
        "deploy/gpu/torch_vision_bench.py\" \"$vision/torch.jsonl\"");
  }

  @Test
  void stepsNamesTheStepsARerunRunsAndRecordsTheOthersAsSkipped(@TempDir Path out) throws Exception {
    Process process = startCheckWithoutGpu(out, Map.of("STEPS", "parity,torch-vision"));

    assertThat(process.waitFor(60, TimeUnit.SECONDS)).as("the check ended").isTrue();
    JsonNode summary = DeployFiles.json(out.resolve("summary.json"));
    Map<String, String> statuses = new TreeMap<>();
    summary.get("steps").forEach(step -> statuses.put(step.get("step").asString(), step.get("status").asString()));
    // gpu and runtime always run; the named steps run (here: without a GPU); the rest are skipped
    assertThat(statuses).containsEntry("gpu", "no-gpu").containsEntry("parity", "no-gpu")
        .containsEntry("torch-vision", "no-gpu").containsEntry("pytorch", "skipped").containsKey("runtime");
    assertThat(Files.readString(out.resolve("summary.txt"))).contains("not in STEPS=parity,torch-vision");
  }

  /** device-check.sh into {@code out} with an nvidia-smi that does not exist, its output in out/stdout. */
  private static Process startCheckWithoutGpu(Path out, Map<String, String> environment) throws Exception {
    ProcessBuilder builder = new ProcessBuilder("bash", DeployFiles.deploy("gpu/device-check.sh").toString(),
        out.toString()).redirectErrorStream(true).redirectOutput(out.resolve("stdout").toFile());
    builder.environment().put("NVIDIA_SMI", out.resolve("no-such-nvidia-smi").toString());
    builder.environment().put("TMPDIR", out.toString());
    builder.environment().putAll(environment);
    return builder.start();
  }

  @Test
  void theBenchRatiosPairEachOwleryMeasurementWithPyTorchsAndGraphsWithEager(@TempDir Path dir) throws Exception {
    // the two producers' formats: BenchCheck's (CheckRuns.number) and torch_bench.py's (json.dumps, compact)
    Path owlery = Files.writeString(dir.resolve("bench.jsonl"), """
        {"measurement":"copy_gb_per_s","value":4012.33,"unit":"GB/s","detail":"copy of 1024 MiB, read + write"}
        {"measurement":"load_seconds","value":12.5000,"unit":"s","detail":"13.5 GB"}
        {"measurement":"decode_b1_graphs_bandwidth_fraction","value":0.710000,"unit":"of copy","detail":"a, b"}
        {"measurement":"decode_b64_tokens_per_s","value":null,"unit":"tok/s","detail":"64 sequences"}
        {"measurement":"prefill_tflops","value":3.00000e+02,"unit":"TFLOP/s","detail":"flops"}
        {"measurement":"vision_load_seconds","value":3.10000,"unit":"s","detail":"F16 weights"}
        {"measurement":"vit_b16_images_per_s","value":60.0000,"unit":"images/s","detail":"16 images per pass"}
        """);
    Path torch = Files.writeString(dir.resolve("torch.jsonl"), """
        {"measurement":"copy_gb_per_s","value":4000.0,"unit":"GB/s","detail":"torch.nn.functional: copy"}
        {"measurement":"decode_b1_eager_bandwidth_fraction","value":0.5,"unit":"of copy","detail":"x"}
        {"measurement":"decode_b64_tokens_per_s","value":900.5,"unit":"tok/s","detail":"x"}
        {"measurement":"vit_b16_images_per_s","value":40.0,"unit":"images/s","detail":"transformers"}
        """);
    int start = check.indexOf("bench_ratios() {");
    String function = check.substring(start, check.indexOf("\n}\n", start) + 2);
    Process process = new ProcessBuilder("bash", "-c", function + "\nbench_ratios \"$1\" \"$2\"", "bash",
        torch.toString(), owlery.toString()).redirectErrorStream(true).start();
    String tsv = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(process.waitFor(30, TimeUnit.SECONDS)).isTrue();
    assertThat(process.exitValue()).as(tsv).isZero();
    assertThat(tsv.lines()).containsExactly(
        "copy_gb_per_s\t4012.33\t4000.0\t1.003\tGB/s",
        "decode_b1_graphs_bandwidth_fraction\t0.710000\t0.5\t1.420\tof copy",
        "decode_b64_tokens_per_s\tnone\t900.5\tnone\ttok/s",
        "prefill_tflops\t3.00000e+02\tnone\tnone\tTFLOP/s",
        "vit_b16_images_per_s\t60.0000\t40.0\t1.500\timages/s");
  }

  @Test
  void theTorchBenchCompilesAndWithoutTorchSaysSoInOneLine(@TempDir Path dir) throws Exception {
    Path script = DeployFiles.deploy("gpu/torch_bench.py");
    Process compile = new ProcessBuilder("python3", "-c", "import py_compile, sys; py_compile.compile(sys.argv[1], "
        + "cfile=sys.argv[2], doraise=True)", script.toString(), dir.resolve("torch_bench.pyc").toString())
        .redirectErrorStream(true).start();
    String compiled = new String(compile.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(compile.waitFor(30, TimeUnit.SECONDS)).isTrue();
    assertThat(compile.exitValue()).as(compiled).isZero();
    // -S: no site-packages, so no torch whatever this machine has installed
    Process run = new ProcessBuilder("python3", "-S", script.toString(), dir.resolve("torch.jsonl").toString(),
        "--layers", "2").redirectErrorStream(true).start();
    String output = new String(run.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(run.waitFor(30, TimeUnit.SECONDS)).isTrue();
    assertThat(run.exitValue()).as(output).isEqualTo(4);
    assertThat(output.lines()).containsExactly("no PyTorch: No module named 'torch' (torch_bench.py needs torch with "
        + "CUDA on the GPU machine)");
    assertThat(dir.resolve("torch.jsonl")).doesNotExist();
  }

  @Test
  void theTorchVisionBenchCompilesAndWithoutTorchSaysSoInOneLine(@TempDir Path dir) throws Exception {
    Path script = DeployFiles.deploy("gpu/torch_vision_bench.py");
    Process compile = new ProcessBuilder("python3", "-c", "import py_compile, sys; py_compile.compile(sys.argv[1], "
        + "cfile=sys.argv[2], doraise=True)", script.toString(), dir.resolve("torch_vision_bench.pyc").toString())
        .redirectErrorStream(true).start();
    String compiled = new String(compile.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(compile.waitFor(30, TimeUnit.SECONDS)).isTrue();
    assertThat(compile.exitValue()).as(compiled).isZero();
    // -S: no site-packages, so no torch whatever this machine has installed
    Process run = new ProcessBuilder("python3", "-S", script.toString(), dir.resolve("torch.jsonl").toString())
        .redirectErrorStream(true).start();
    String output = new String(run.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(run.waitFor(30, TimeUnit.SECONDS)).isTrue();
    assertThat(run.exitValue()).as(output).isEqualTo(4);
    assertThat(output.lines()).containsExactly("no PyTorch: No module named 'torch' (torch_vision_bench.py needs torch "
        + "with CUDA on the GPU machine)");
    assertThat(dir.resolve("torch.jsonl")).doesNotExist();
  }

  /** The value of a shell variable's one assignment, {@code NAME=value} at the start of a line. */
  private static String assignment(String script, String name) {
    Matcher m = Pattern.compile("(?m)^" + name + "=(\\S+)$").matcher(script);
    assertThat(m.find()).as("%s= in the script", name).isTrue();
    return m.group(1);
  }
}
