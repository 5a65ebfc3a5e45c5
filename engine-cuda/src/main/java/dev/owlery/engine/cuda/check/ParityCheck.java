package dev.owlery.engine.cuda.check;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.checkpoint.SafetensorsCheckpoint;
import dev.owlery.engine.config.LlamaConfig;
import dev.owlery.engine.config.ModelConfig;
import dev.owlery.engine.cuda.forward.DeviceDecoderSlice;
import dev.owlery.engine.cuda.runtime.CudaDriverDevice;
import dev.owlery.engine.cuda.runtime.Device;
import dev.owlery.engine.cuda.runtime.NoDeviceException;
import dev.owlery.engine.decoder.DecoderSlice;
import dev.owlery.engine.decoder.Embedding;
import dev.owlery.engine.decoder.Modality;
import dev.owlery.engine.kernel.ScalarKernels;
import dev.owlery.engine.kv.KvCacheDtype;
import dev.owlery.engine.parallel.Collective;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import jcuda.CudaException;

/**
 * The decoder on device 0 against the CPU and the fixtures' reference outputs, writing
 * {@code parity.jsonl} (one JSON object per case) and {@code summary.txt} into a folder. Invoked by
 * {@code deploy/gpu/device-check.sh} as {@code java ... dev.owlery.engine.cuda.check.ParityCheck
 * <output folder> [<fixtures folder>]} (fixtures default: {@code testdata}).
 *
 * <ul>
 *   <li>tiny-owl2 (MAM, F32 weights): the reference's 24 spliced prompt rows and its 8-token greedy
 *       continuation on a {@link DeviceDecoderSlice}, against the CPU's {@link DecoderSlice} with an
 *       F16 paged cache on the same block table: logits at every position and step within
 *       {@value #TINY_OWL2_LOGITS_TOLERANCE}, greedy ids equal to the CPU's and to the official
 *       {@code generate.tokens}.
 *   <li>stories260k (plain LLaMA, GQA 8/4): each of run.c's 7 greedy cases, the first
 *       {@value #STORIES_IDS} generated ids exact.
 * </ul>
 *
 * <p>Exit status as {@link KernelCheck}'s: 0 every case passed, 1 a case failed or a CUDA error, 2
 * bad arguments, 3 no CUDA device (one line "no CUDA device: reason" on standard output and in
 * {@code summary.txt}).
 */
public final class ParityCheck {

  /** The fixture's logits tolerance, which the CPU path meets against the official code (fixture README). */
  static final double TINY_OWL2_LOGITS_TOLERANCE = 1e-3;
  /** Generated ids held per stories260k case (issue 11: 64 each; case 0 generates 256). */
  static final int STORIES_IDS = 64;
  private static final int STEP_CAPACITY = 16;
  private static final int BLOCK_SIZE = 16;

  private ParityCheck() {}

  public static void main(String[] args) {
    System.exit(run(args, System.out));
  }

  /** The check without {@code System.exit}: returns the exit status, reports on {@code out}. */
  static int run(String[] args, PrintStream out) {
    if (args.length < 1 || args.length > 2) {
      out.println("usage: ParityCheck <output folder> [<fixtures folder, default testdata>]: runs the decoder on the "
          + "CUDA device against the CPU and the fixtures, writes parity.jsonl and summary.txt there");
      return KernelCheck.EXIT_USAGE;
    }
    Path folder = Path.of(args[0]);
    Path fixtures = Path.of(args.length == 2 ? args[1] : "testdata");
    try {
      Files.createDirectories(folder);
    } catch (IOException e) {
      out.println("cannot create the output folder " + folder + ": " + e.getMessage());
      return KernelCheck.EXIT_USAGE;
    }
    if (!Files.isDirectory(fixtures.resolve("tiny-owl2")) || !Files.isDirectory(fixtures.resolve("stories260k"))) {
      out.println("no fixtures at " + fixtures.toAbsolutePath() + ": give the repository's testdata folder");
      return KernelCheck.EXIT_USAGE;
    }
    try (CudaDriverDevice gpu = CudaDriverDevice.open()) {
      return check(gpu, fixtures, folder, out);
    } catch (NoDeviceException e) {
      String line = "no CUDA device: " + e.getMessage();
      out.println(line);
      write(folder.resolve("summary.txt"), List.of(line));
      return KernelCheck.EXIT_NO_DEVICE;
    } catch (CudaException e) {
      out.println("CUDA error: " + e.getMessage());
      return KernelCheck.EXIT_FAILED;
    }
  }

  /** Every parity case on {@code device}; the results in {@code folder}. */
  static int check(Device device, Path fixtures, Path folder, PrintStream out) {
    List<String> json = new ArrayList<>();
    List<String> summary = new ArrayList<>();
    summary.add("parity check on " + device.name());
    out.println(summary.getFirst());
    int failed = 0;
    List<Case> cases = new ArrayList<>();
    try {
      cases.add(tinyOwl2(device, fixtures.resolve("tiny-owl2")));
      device.freeAll();
      cases.addAll(stories260k(device, fixtures.resolve("stories260k")));
    } catch (CudaException e) {
      cases.add(new Case("error", Double.NaN, 0, false, "CUDA error: " + e.getMessage()));
    } finally {
      device.freeAll();
    }
    for (Case c : cases) {
      json.add("{\"case\":\"%s\",\"maxAbsError\":%s,\"tolerance\":%s,\"pass\":%s,\"detail\":\"%s\"}".formatted(
          c.name(), number(c.maxAbsError()), number(c.tolerance()), c.passed(), c.detail().replace("\"", "'")));
      String line = "%s %-22s %s".formatted(c.passed() ? "PASS" : "FAIL", c.name(), c.detail());
      summary.add(line);
      out.println(line);
      failed += c.passed() ? 0 : 1;
    }
    String verdict = failed == 0 ? "all %d parity cases passed".formatted(cases.size())
        : "%d of %d parity cases failed".formatted(failed, cases.size());
    summary.add(verdict);
    out.println(verdict);
    write(folder.resolve("parity.jsonl"), json);
    write(folder.resolve("summary.txt"), summary);
    return failed == 0 ? KernelCheck.EXIT_PASSED : KernelCheck.EXIT_FAILED;
  }

  /** One case's outcome; {@code tolerance} 0 where only ids are compared. */
  private record Case(String name, double maxAbsError, double tolerance, boolean passed, String detail) {}

  private static Case tinyOwl2(Device device, Path dir) {
    LlamaConfig config = ModelConfig.load(dir).text();
    try (Checkpoint model = SafetensorsCheckpoint.openFile(dir.resolve("model.safetensors"));
        Checkpoint reference = SafetensorsCheckpoint.openFile(dir.resolve("reference.safetensors"))) {
      int numPositions = Math.toIntExact(reference.tensor("llm.modality_indicators").shape()[1]);
      float[] embeds = reference.tensor("llm.inputs_embeds", 1, numPositions, config.hiddenSize()).toFloatArray();
      long[] indicators = reference.tensor("llm.modality_indicators", 1, numPositions).toLongArray();
      Modality[] modalities = new Modality[numPositions];
      for (int i = 0; i < numPositions; i++) {
        modalities[i] = Modality.ofIndicator(indicators[i]);
      }
      int[] expected = Arrays.stream(reference.tensor("generate.tokens").toLongArray()).mapToInt(Math::toIntExact)
          .toArray();
      int[] table = blockTable(numPositions + expected.length);
      GreedyRun.Prompt prompt = new GreedyRun.Prompt(embeds, modalities, table);
      Embedding embedTokens = Embedding.load(model, config);
      DeviceDecoderSlice slice = new DeviceDecoderSlice(device, model, config, Collective.single(), STEP_CAPACITY);
      GreedyRun onDevice = GreedyRun.onDevice(slice, slice.newKvPool(2 * table.length, BLOCK_SIZE), embedTokens,
          prompt, expected.length);
      DecoderSlice cpuSlice = new DecoderSlice(model, config, Collective.single(), new ScalarKernels(), STEP_CAPACITY);
      GreedyRun cpu = GreedyRun.onCpu(cpuSlice, cpuSlice.newKvBlockPool(2 * table.length, BLOCK_SIZE,
          KvCacheDtype.F16), embedTokens, prompt, expected.length);
      double error = onDevice.maxAbsDifference(cpu);
      boolean idsMatch = Arrays.equals(onDevice.generated(), expected) && Arrays.equals(cpu.generated(), expected);
      boolean passed = error <= TINY_OWL2_LOGITS_TOLERANCE && idsMatch;
      return new Case("tiny-owl2", error, TINY_OWL2_LOGITS_TOLERANCE, passed, String.format(Locale.ROOT,
          "%d prompt positions + %d greedy tokens: max |logits - CPU (F16 KV)| %.3g (tolerance %.0e); greedy ids %s",
          numPositions, expected.length, error, TINY_OWL2_LOGITS_TOLERANCE,
          idsMatch ? "equal to the official generate" : "device " + Arrays.toString(onDevice.generated())
              + " CPU " + Arrays.toString(cpu.generated()) + " official " + Arrays.toString(expected)));
    }
  }

  private static List<Case> stories260k(Device device, Path dir) {
    Path hf = dir.resolve("hf");
    LlamaConfig config = ModelConfig.load(hf).text();
    JsonNode cases;
    try {
      cases = new ObjectMapper().readTree(dir.resolve("expected.json").toFile()).get("cases");
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + dir.resolve("expected.json"), e);
    }
    List<Case> results = new ArrayList<>();
    try (Checkpoint model = SafetensorsCheckpoint.openFile(hf.resolve("model.safetensors"))) {
      Embedding embedTokens = Embedding.load(model, config);
      for (int i = 0; i < cases.size(); i++) {
        int[] promptIds = ints(cases.get(i).get("prompt_ids"));
        int[] expected = Arrays.copyOf(ints(cases.get(i).get("generated_ids")), STORIES_IDS);
        float[] embeds = new float[promptIds.length * config.hiddenSize()];
        for (int t = 0; t < promptIds.length; t++) {
          embedTokens.lookup(promptIds[t], embeds, t * config.hiddenSize());
        }
        Modality[] text = new Modality[promptIds.length];
        Arrays.fill(text, Modality.TEXT);
        int[] table = blockTable(promptIds.length + expected.length);
        DeviceDecoderSlice slice = new DeviceDecoderSlice(device, model, config, Collective.single(), STEP_CAPACITY);
        GreedyRun run = GreedyRun.onDevice(slice, slice.newKvPool(2 * table.length, BLOCK_SIZE), embedTokens,
            new GreedyRun.Prompt(embeds, text, table), expected.length);
        int same = 0;
        while (same < expected.length && run.generated()[same] == expected[same]) {
          same++;
        }
        boolean passed = same == expected.length;
        results.add(new Case("stories260k-case-" + i, Double.NaN, 0, passed, "%d prompt ids: %d of %d greedy ids equal "
            .formatted(promptIds.length, same, expected.length) + "to run.c's"));
        device.freeAll();
      }
    }
    return results;
  }

  /** Blocks {@code 2k - 1, 2k - 3, ..., 1} of a pool of {@code 2k}: out of order, every other block a hole. */
  private static int[] blockTable(int positions) {
    int k = (positions + BLOCK_SIZE - 1) / BLOCK_SIZE;
    int[] table = new int[k];
    for (int i = 0; i < k; i++) {
      table[i] = 2 * k - 1 - 2 * i;
    }
    return table;
  }

  private static int[] ints(JsonNode array) {
    int[] out = new int[array.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = array.get(i).asInt();
    }
    return out;
  }

  private static void write(Path file, List<String> lines) {
    try {
      Files.write(file, lines);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + file, e);
    }
  }

  private static String number(double value) {
    return Double.isFinite(value) ? String.format(Locale.ROOT, "%.6g", value) : "null";
  }
}
