package dev.owlery.engine.cuda.check;

import static dev.owlery.engine.cuda.check.CheckRuns.createFolder;
import static dev.owlery.engine.cuda.check.CheckRuns.number;
import static dev.owlery.engine.cuda.check.CheckRuns.onDevice;
import static dev.owlery.engine.cuda.check.CheckRuns.write;

import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.checkpoint.Checkpoints;
import dev.owlery.engine.checkpoint.SafetensorsCheckpoint;
import dev.owlery.engine.config.ModelConfig;
import dev.owlery.engine.cuda.forward.DeviceVisionTower;
import dev.owlery.engine.cuda.runtime.Device;
import dev.owlery.engine.kernel.ScalarKernels;
import dev.owlery.engine.tensor.DType;
import dev.owlery.engine.tensor.WeightFormat;
import dev.owlery.engine.vision.SyntheticVisionTower;
import dev.owlery.engine.vision.VisionTower;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.stream.Stream;

/**
 * The vision tower on device 0 ({@link DeviceVisionTower}, issue 12): its parity with the CPU on
 * tiny-owl2, then its speed at mPLUG-Owl2's real shape (CLIP ViT-L/14 at 448 px and the 6-layer
 * abstractor) with synthetic F16 weights ({@link SyntheticVisionTower}, written under the output
 * folder and deleted after). Invoked by {@code deploy/gpu/device-check.sh} as {@code java ...
 * dev.owlery.engine.cuda.check.VisionCheck <output folder> [<fixtures folder, default testdata>]};
 * writes {@code vision_parity.jsonl}, {@code vision_bench.jsonl} (the fields of BenchCheck's
 * bench.jsonl, names as {@code torch_vision_bench.py} gives the same ones) and {@code summary.txt}.
 *
 * <p>Parity (tiny-owl2): one image with float32 weights within 2e-4 of the CPU {@link VisionTower}
 * and of the official dump (the fixture's tolerance); a pass of three different images equal to
 * each image alone, exactly (no kernel's result for a row depends on the pass's other rows: no
 * atomics, no split sums); two images with F16 weights within 6e-3 of the CPU's F16 tower (the
 * tensor-core GEMM and attention round to F16; DeviceVisionTowerTest derives the bound).
 *
 * <p>Speed, per pass size in {@link Plan#batches}: images/s of the whole tower (pixels in, visual
 * rows back on the host, wall clock) and of the ViT alone (the tower's own split, a synchronize
 * between the halves), after {@link Plan#warmupPasses} unmeasured passes. Reported, never asserted;
 * a non-finite output fails the check.
 *
 * <p>Exit status as {@link KernelCheck}'s.
 */
public final class VisionCheck {

  /** Fixture README "Tolerances": visual_embeds of a float32 implementation. */
  static final double FIXTURE_TOLERANCE = 2e-4;
  /** F16 weights, two images through gemm_f16 against the CPU's F16 tower (DeviceVisionTowerTest.F16_GEMM_BOUND). */
  static final double F16_GEMM_BOUND = 6e-3;

  private VisionCheck() {}

  /**
   * What the speed part measures.
   *
   * @param batches images per pass, one measurement each
   * @param timedPasses per batch, the passes timed (after the warm-up)
   */
  record Plan(SyntheticVisionTower.Geometry geometry, int[] batches, int warmupPasses, int[] timedPasses) {

    /** mPLUG-Owl2's tower at batch 1 (8 timed passes) and 16 (3 timed passes): torch_vision_bench.py's counts. */
    static Plan mplugOwl2() {
      return new Plan(SyntheticVisionTower.Geometry.mplugOwl2(), new int[] {1, 16}, 1, new int[] {8, 3});
    }

    int maxBatch() {
      int max = 1;
      for (int b : batches) {
        max = Math.max(max, b);
      }
      return max;
    }
  }

  /** One parity case: the largest difference and the bound it is held to. */
  record Case(String name, double maxAbs, double bound, String detail) {

    boolean passed() {
      return maxAbs <= bound; // false for NaN
    }
  }

  public static void main(String[] args) {
    System.exit(run(args, System.out));
  }

  /** The check without {@code System.exit}: returns the exit status, reports on {@code out}. */
  static int run(String[] args, PrintStream out) {
    if (args.length < 1 || args.length > 2) {
      out.println("usage: VisionCheck <output folder> [<fixtures folder, default testdata>]: the vision tower on the "
          + "CUDA device against the CPU (tiny-owl2) and its speed at mPLUG-Owl2's shape, written there");
      return KernelCheck.EXIT_USAGE;
    }
    Path folder = Path.of(args[0]);
    Path fixtures = Path.of(args.length == 2 ? args[1] : "testdata");
    if (!createFolder(folder, out)) {
      return KernelCheck.EXIT_USAGE;
    }
    return onDevice(folder, out, gpu -> check(gpu, fixtures.resolve("tiny-owl2"), Plan.mplugOwl2(), folder, out));
  }

  /** The parity cases on tiny-owl2, then the speed of {@code plan}, on {@code device}; results in {@code folder}. */
  static int check(Device device, Path tinyOwl2, Plan plan, Path folder, PrintStream out) {
    List<String> summary = new ArrayList<>();
    summary.add("vision on %s: tiny-owl2 parity, then synthetic F16 weights at %s".formatted(device.name(),
        plan.geometry()));
    out.println(summary.getFirst());
    List<Case> cases;
    List<BenchCheck.Row> rows;
    try {
      cases = parity(device, tinyOwl2);
      device.freeAll();
      rows = speed(device, plan, folder.resolve("synthetic"));
    } finally {
      device.freeAll();
    }
    List<String> parityJson = new ArrayList<>();
    int failed = 0;
    for (Case c : cases) {
      parityJson.add("{\"case\":\"%s\",\"max_abs\":%s,\"bound\":%s,\"passed\":%s,\"detail\":\"%s\"}".formatted(c.name(),
          number(c.maxAbs()), number(c.bound()), c.passed(), c.detail()));
      String line = String.format(Locale.ROOT, "%-4s %-28s max |diff| %.3g (bound %.3g) %s",
          c.passed() ? "PASS" : "FAIL", c.name(), c.maxAbs(), c.bound(), c.detail());
      summary.add(line);
      out.println(line);
      failed += c.passed() ? 0 : 1;
    }
    List<String> benchJson = new ArrayList<>();
    String notFinite = null;
    for (BenchCheck.Row r : rows) {
      benchJson.add("{\"measurement\":\"%s\",\"value\":%s,\"unit\":\"%s\",\"detail\":\"%s\"}".formatted(r.name(),
          number(r.value()), r.unit(), r.detail()));
      String line = String.format(Locale.ROOT, "%-28s %12.4g %-9s %s", r.name(), r.value(), r.unit(), r.detail());
      summary.add(line);
      out.println(line);
      if (!(Double.isFinite(r.value()) && r.value() > 0) && notFinite == null) {
        notFinite = r.name();
      }
    }
    String verdict = failed > 0 ? "%d of %d parity cases failed".formatted(failed, cases.size())
        : notFinite != null ? "measurement %s is not a positive finite number".formatted(notFinite)
        : "all %d parity cases passed, %d measurements made".formatted(cases.size(), rows.size());
    summary.add(verdict);
    out.println(verdict);
    write(folder.resolve("vision_parity.jsonl"), parityJson);
    write(folder.resolve("vision_bench.jsonl"), benchJson);
    write(folder.resolve("summary.txt"), summary);
    return failed == 0 && notFinite == null ? KernelCheck.EXIT_PASSED : KernelCheck.EXIT_FAILED;
  }

  /** tiny-owl2 on the device against the CPU tower: float32, a pass of three, F16 weights. */
  static List<Case> parity(Device device, Path tinyOwl2) {
    ModelConfig config = ModelConfig.load(tinyOwl2);
    List<Case> cases = new ArrayList<>();
    try (Checkpoint model = SafetensorsCheckpoint.openFile(tinyOwl2.resolve("model.safetensors"));
        Checkpoint reference = SafetensorsCheckpoint.openFile(tinyOwl2.resolve("reference.safetensors"))) {
      float[] pixels = reference.tensor("pixel_values").toFloatArray();
      float[] official = reference.tensor("visual_embeds").toFloatArray();
      List<float[]> images = List.of(pixels, mirrored(pixels, config.vision().imageSize()), noise(pixels.length));
      VisionTower cpu = new VisionTower(config, model, new ScalarKernels());
      DeviceVisionTower tower = new DeviceVisionTower(device, config, model, images.size());
      float[] alone = tower.encode(List.of(pixels)).visualEmbeds().getFirst();
      cases.add(new Case("f32_one_image_vs_cpu", maxAbs(alone, cpu.encode(pixels)), FIXTURE_TOLERANCE,
          "float32 weights, 17 tokens, 8 queries"));
      cases.add(new Case("f32_one_image_vs_official", maxAbs(alone, official), FIXTURE_TOLERANCE,
          "the official dump's visual_embeds"));
      List<float[]> batched = tower.encode(images).visualEmbeds();
      double batchDiff = 0;
      for (int i = 0; i < images.size(); i++) {
        batchDiff = Math.max(batchDiff, maxAbs(batched.get(i), tower.encode(List.of(images.get(i))).visualEmbeds()
            .getFirst()));
      }
      cases.add(new Case("f32_pass_of_3_vs_alone", batchDiff, 0, "three different images in one pass, each alone"));
    }
    device.freeAll();
    try (Checkpoint f16 = SafetensorsCheckpoint.openFile(tinyOwl2.resolve("model.safetensors"))
            .withWeightFormat(WeightFormat.F16);
        Checkpoint reference = SafetensorsCheckpoint.openFile(tinyOwl2.resolve("reference.safetensors"))) {
      float[] pixels = reference.tensor("pixel_values").toFloatArray();
      float[] second = mirrored(pixels, config.vision().imageSize());
      VisionTower cpu = new VisionTower(config, f16, new ScalarKernels());
      List<float[]> both = new DeviceVisionTower(device, config, f16, 2).encode(List.of(pixels, second))
          .visualEmbeds();
      cases.add(new Case("f16_pass_of_2_vs_cpu_f16", Math.max(maxAbs(both.get(0), cpu.encode(pixels)),
          maxAbs(both.get(1), cpu.encode(second))), F16_GEMM_BOUND,
          "F16 weights on both sides, gemm_f16 and full_attention_f16 round to F16"));
    }
    return cases;
  }

  /** Images/s of each pass size of {@code plan}, the weights written to {@code scratch} and deleted after. */
  static List<BenchCheck.Row> speed(Device device, Plan plan, Path scratch) {
    List<BenchCheck.Row> rows = new ArrayList<>();
    try {
      long writeStart = System.nanoTime();
      SyntheticVisionTower.write(plan.geometry(), DType.F16, 7, scratch);
      double writeSeconds = (System.nanoTime() - writeStart) / 1e9;
      ModelConfig config = ModelConfig.load(scratch);
      try (Checkpoint weights = Checkpoints.open(scratch)) {
        long loadStart = System.nanoTime();
        DeviceVisionTower tower = new DeviceVisionTower(device, config, weights, plan.maxBatch());
        device.synchronize();
        rows.add(new BenchCheck.Row("vision_load_seconds", (System.nanoTime() - loadStart) / 1e9, "s",
            "F16 weights copied to the device (written in %.1f s)".formatted(writeSeconds)));
        tower.capturePasses(); // as the vision worker serves: the warm-up's first pass of each size captures
        float[] image = noise(tower.numPixelValues());
        for (int i = 0; i < plan.batches().length; i++) {
          int batch = plan.batches()[i];
          int passes = plan.timedPasses()[i];
          List<float[]> images = new ArrayList<>();
          for (int b = 0; b < batch; b++) {
            images.add(image);
          }
          for (int w = 0; w < plan.warmupPasses(); w++) {
            tower.encode(images);
          }
          long visionNs = 0;
          boolean finite = true;
          long start = System.nanoTime();
          for (int p = 0; p < passes; p++) {
            DeviceVisionTower.Encoded encoded = tower.encode(images);
            visionNs += encoded.visionNs();
            finite &= encoded.visualEmbeds().stream().allMatch(VisionCheck::finite);
          }
          double seconds = (System.nanoTime() - start) / 1e9;
          String detail = "%d images per pass replayed from graphs, %d passes after %d unmeasured"
              .formatted(batch, passes, plan.warmupPasses());
          rows.add(new BenchCheck.Row("vit_b%d_images_per_s".formatted(batch),
              finite ? (double) batch * passes / (visionNs / 1e9) : Double.NaN, "images/s",
              "ViT alone (patch embedding to post_layernorm), " + detail));
          rows.add(new BenchCheck.Row("vision_b%d_images_per_s".formatted(batch),
              finite ? batch * passes / seconds : Double.NaN, "images/s",
              "ViT + abstractor, pixels in, visual rows back on the host, " + detail));
        }
      }
    } finally {
      deleteTree(scratch);
    }
    return rows;
  }

  /** The image flipped left to right, CHW of three channels (a second image for batch tests). */
  public static float[] mirrored(float[] chw, int size) {
    float[] out = new float[chw.length];
    for (int c = 0; c < 3; c++) {
      for (int y = 0; y < size; y++) {
        for (int x = 0; x < size; x++) {
          out[(c * size + y) * size + x] = chw[(c * size + y) * size + size - 1 - x];
        }
      }
    }
    return out;
  }

  /** Normalised pixel values of noise, in CLIP's range (the same for every call with n). */
  public static float[] noise(int n) {
    SplittableRandom random = new SplittableRandom(20261204L);
    float[] out = new float[n];
    for (int i = 0; i < n; i++) {
      out[i] = (float) random.nextDouble(-1.8, 2.1);
    }
    return out;
  }

  private static double maxAbs(float[] a, float[] b) {
    if (a.length != b.length) {
      return Double.NaN;
    }
    double max = 0;
    for (int i = 0; i < a.length; i++) {
      double d = Math.abs((double) a[i] - b[i]);
      max = Double.isNaN(d) ? Double.NaN : Math.max(max, d);
      if (Double.isNaN(max)) {
        return max;
      }
    }
    return max;
  }

  private static boolean finite(float[] values) {
    for (float v : values) {
      if (!Float.isFinite(v)) {
        return false;
      }
    }
    return true;
  }

  private static void deleteTree(Path dir) {
    if (!Files.exists(dir)) {
      return;
    }
    try (Stream<Path> paths = Files.walk(dir)) {
      for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) {
        Files.delete(p);
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot delete " + dir, e);
    }
  }
}
