package dev.owlery.engine.cuda.check;

import static dev.owlery.engine.cuda.check.CheckRuns.createFolder;
import static dev.owlery.engine.cuda.check.CheckRuns.number;
import static dev.owlery.engine.cuda.check.CheckRuns.onDevice;
import static dev.owlery.engine.cuda.check.CheckRuns.write;

import dev.owlery.engine.config.LlamaConfig;
import dev.owlery.engine.cuda.forward.DeviceDecoderSlice;
import dev.owlery.engine.cuda.forward.DeviceKvPool;
import dev.owlery.engine.cuda.forward.SliceStep;
import dev.owlery.engine.cuda.runtime.Device;
import dev.owlery.engine.cuda.runtime.DevicePointer;
import dev.owlery.engine.decoder.LogitRows;
import dev.owlery.engine.decoder.Modality;
import dev.owlery.engine.parallel.Collective;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.stream.IntStream;

/**
 * The decoder's speed on device 0 at LLaMA-2-7B's shape with synthetic F16 weights
 * ({@link SyntheticCheckpoint}: made in memory, no files), next to a device-to-device copy measured
 * in the same run, writing {@code bench.jsonl} (one JSON object per measurement) and
 * {@code summary.txt} into a folder. Invoked by {@code deploy/gpu/device-check.sh} as
 * {@code java ... dev.owlery.engine.cuda.check.BenchCheck <output folder> [--layers N]} (N of 32
 * layers, default 32; fewer to fit a time cap, the report says how many ran).
 *
 * <p>Measurements, each in one run of bounded length (the counts are {@link Plan#LLAMA2_7B}'s):
 * <ul>
 *   <li>{@code copy_gb_per_s}: a 1 GiB device-to-device copy, read + write counted, 50 runs.
 *   <li>{@code decode_b1_eager_tokens_per_s}, {@code decode_b1_graphs_tokens_per_s}: one sequence,
 *       64 decode steps after 3 unmeasured ones, from position 128 (a cache of 128 positions), each
 *       kernel launched one by one, then each step replayed from a captured graph; with each, the
 *       {@code _bandwidth_fraction}: weight bytes per token x tokens/s over the copy's bandwidth.
 *   <li>{@code prefill_tokens_per_s}, {@code prefill_tflops}: a 512-token prompt in one step, 3 runs
 *       after 1 unmeasured; flops as 2 x weights x tokens (lm_head on the last row only) plus causal
 *       attention's 2 x 2 x heads x headDim x T(T+1)/2 per layer.
 *   <li>{@code decode_b16_tokens_per_s}, {@code decode_b64_tokens_per_s}: 16 and 64 sequences, the
 *       same steps as batch 1, from captured graphs.
 * </ul>
 * Speeds are reported, never asserted. Each step's logits are copied back, as in serving; the last
 * ones must be finite, or the measurement says so and the check fails.
 *
 * <p>Exit status as {@link KernelCheck}'s: 0 every measurement made, 1 a non-finite result or a CUDA
 * error, 2 bad arguments, 3 no CUDA device (one line "no CUDA device: reason" on standard output and
 * in {@code summary.txt}).
 */
public final class BenchCheck {

  /** Sequences of the batched decode measurements (issue 11). */
  static final int[] BATCHES = {16, 64};
  private static final int BLOCK_SIZE = 16;

  private BenchCheck() {}

  /**
   * What one run measures: the model's shape and every count that bounds the run's length.
   *
   * @param copyBytes bytes of the device-to-device copy
   * @param copyRuns timed copies (after one unmeasured)
   * @param context cached positions before the first decode step
   * @param warmupSteps decode steps before the timed ones (the graphs' capture happens there)
   * @param decodeSteps timed decode steps per measurement
   * @param prefillTokens the prompt's length
   * @param prefillRuns timed prefills (after one unmeasured)
   */
  record Plan(LlamaConfig config, long copyBytes, int copyRuns, int context, int warmupSteps, int decodeSteps,
      int prefillTokens, int prefillRuns) {

    /** LLaMA-2-7B with {@code layers} of its 32 layers. */
    static Plan llama2_7b(int layers) {
      LlamaConfig config = new LlamaConfig(32000, 4096, 11008, layers, 32, 32, 128, 4096, 1e-5f, 10000f, false, 1, 2,
          false);
      return new Plan(config, 1L << 30, 50, 128, 3, 64, 512, 3);
    }

    /** Weight bytes one decode token reads: every layer's matrices and lm_head, F16. */
    double weightBytesPerToken() {
      return 2.0 * (config.numLayers() * layerParameters() + (double) config.vocabSize() * config.hiddenSize());
    }

    /** Flops of one prefill of {@link #prefillTokens}: the products, lm_head on the last row, causal attention. */
    double prefillFlops() {
      double t = prefillTokens;
      return 2.0 * config.numLayers() * layerParameters() * t + 2.0 * config.vocabSize() * config.hiddenSize()
          + 4.0 * config.numLayers() * config.qSize() * t * (t + 1) / 2;
    }

    private double layerParameters() {
      double h = config.hiddenSize();
      return h * config.qSize() * 2 + h * config.kvSize() * 2 + 3 * h * config.intermediateSize();
    }

    private int maxBatch() {
      return Arrays.stream(BATCHES).max().orElseThrow();
    }

    private int blocksPerSequence() {
      int positions = Math.max(prefillTokens, context + warmupSteps + decodeSteps);
      return (positions + BLOCK_SIZE - 1) / BLOCK_SIZE;
    }
  }

  /** One measurement: {@code name} as torch_bench.py names the same one. */
  record Row(String name, double value, String unit, String detail) {}

  public static void main(String[] args) {
    System.exit(run(args, System.out));
  }

  /** The check without {@code System.exit}: returns the exit status, reports on {@code out}. */
  static int run(String[] args, PrintStream out) {
    int layers = 32;
    if (args.length == 3 && args[1].equals("--layers")) {
      try {
        layers = Integer.parseInt(args[2]);
      } catch (NumberFormatException e) {
        layers = 0;
      }
    }
    if ((args.length != 1 && args.length != 3) || layers < 1 || layers > 32) {
      out.println("usage: BenchCheck <output folder> [--layers N, 1 to 32, default 32]: times LLaMA-2-7B's shape "
          + "(synthetic F16 weights) on the CUDA device, writes bench.jsonl and summary.txt there");
      return KernelCheck.EXIT_USAGE;
    }
    Path folder = Path.of(args[0]);
    if (!createFolder(folder, out)) {
      return KernelCheck.EXIT_USAGE;
    }
    Plan plan = Plan.llama2_7b(layers);
    String shape = "LLaMA-2-7B shape, %d of 32 layers".formatted(layers);
    return onDevice(folder, out, gpu -> check(gpu, plan, shape, folder, out));
  }

  /** Every measurement of {@code plan} on {@code device}; the results in {@code folder}. */
  static int check(Device device, Plan plan, String shape, Path folder, PrintStream out) {
    List<String> summary = new ArrayList<>();
    summary.add("bench on %s: %s, synthetic F16 weights".formatted(device.name(), shape));
    out.println(summary.getFirst());
    List<Row> rows;
    String failure = null; // the first measurement that is not a positive finite number
    try {
      rows = measure(device, plan);
    } finally {
      device.freeAll();
    }
    List<String> json = new ArrayList<>();
    for (Row r : rows) {
      json.add("{\"measurement\":\"%s\",\"value\":%s,\"unit\":\"%s\",\"detail\":\"%s\"}".formatted(r.name(),
          number(r.value()), r.unit(), r.detail().replace("\"", "'")));
      String line = String.format(Locale.ROOT, "%-36s %12.4g %-8s %s", r.name(), r.value(), r.unit(), r.detail());
      summary.add(line);
      out.println(line);
      if (!(Double.isFinite(r.value()) && r.value() > 0) && failure == null) {
        failure = r.name();
      }
    }
    String verdict = failure == null ? "all %d measurements made".formatted(rows.size())
        : "measurement %s is not a positive finite number".formatted(failure);
    summary.add(verdict);
    out.println(verdict);
    write(folder.resolve("bench.jsonl"), json);
    write(folder.resolve("summary.txt"), summary);
    return failure == null ? KernelCheck.EXIT_PASSED : KernelCheck.EXIT_FAILED;
  }

  /** The copy, then the model loaded once: batch-1 decode eager and from graphs, the prefill, batched decode. */
  static List<Row> measure(Device device, Plan plan) {
    List<Row> rows = new ArrayList<>();
    double copyBytesPerSecond = copyBytesPerSecond(device, plan);
    rows.add(new Row("copy_gb_per_s", copyBytesPerSecond / 1e9, "GB/s", "device-to-device copy of %.4g MiB, read + write, %d runs"
        .formatted(plan.copyBytes() / 1048576.0, plan.copyRuns())));
    LlamaConfig config = plan.config();
    try (SyntheticCheckpoint weights = new SyntheticCheckpoint(config, 11)) {
      long loadStart = System.nanoTime();
      DeviceDecoderSlice slice = new DeviceDecoderSlice(device, weights, config, Collective.single(),
          Math.max(plan.prefillTokens(), plan.maxBatch()));
      device.synchronize();
      double loadSeconds = (System.nanoTime() - loadStart) / 1e9;
      rows.add(new Row("load_seconds", loadSeconds, "s", "%.3g GB of F16 weights copied to the device"
          .formatted(plan.weightBytesPerToken() / 1e9)));
      DeviceKvPool pool = slice.newKvPool(plan.maxBatch() * plan.blocksPerSequence(), BLOCK_SIZE);
      String steps = "%d steps from position %d after %d unmeasured".formatted(plan.decodeSteps(), plan.context(),
          plan.warmupSteps());
      double eager = decodeTokensPerSecond(device, slice, pool, plan, 1);
      rows.add(new Row("decode_b1_eager_tokens_per_s", eager, "tok/s", "batch 1, every kernel launched, " + steps));
      rows.add(bandwidthFraction("decode_b1_eager_bandwidth_fraction", eager, plan, copyBytesPerSecond));
      slice.captureDecodeSteps();
      double graphs = decodeTokensPerSecond(device, slice, pool, plan, 1);
      rows.add(new Row("decode_b1_graphs_tokens_per_s", graphs, "tok/s", "batch 1, steps replayed from captured graphs, "
          + steps));
      rows.add(bandwidthFraction("decode_b1_graphs_bandwidth_fraction", graphs, plan, copyBytesPerSecond));
      double prefillSeconds = prefillSeconds(device, slice, pool, plan);
      rows.add(new Row("prefill_tokens_per_s", plan.prefillTokens() / prefillSeconds, "tok/s",
          "a %d-token prompt in one step, %d runs after 1 unmeasured".formatted(plan.prefillTokens(), plan.prefillRuns())));
      rows.add(new Row("prefill_tflops", plan.prefillFlops() / prefillSeconds / 1e12, "TFLOP/s",
          "%.3g flops per prefill (products, last-row lm_head, causal attention)".formatted(plan.prefillFlops())));
      for (int batch : BATCHES) {
        rows.add(new Row("decode_b%d_tokens_per_s".formatted(batch), decodeTokensPerSecond(device, slice, pool, plan,
            batch), "tok/s", "%d sequences, steps replayed from captured graphs, %s".formatted(batch, steps)));
      }
    }
    return rows;
  }

  private static Row bandwidthFraction(String name, double tokensPerSecond, Plan plan, double copyBytesPerSecond) {
    double bytesPerSecond = plan.weightBytesPerToken() * tokensPerSecond;
    return new Row(name, bytesPerSecond / copyBytesPerSecond, "of copy", String.format(Locale.ROOT,
        "%.3g weight bytes per token x tokens/s = %.1f GB/s", plan.weightBytesPerToken(), bytesPerSecond / 1e9));
  }

  /** Bytes moved (read + write) per second by a device-to-device copy; its buffers freed after. */
  private static double copyBytesPerSecond(Device device, Plan plan) {
    DevicePointer src = device.allocate(plan.copyBytes());
    DevicePointer dst = device.allocate(plan.copyBytes());
    try {
      device.copy(dst, src, plan.copyBytes());
      device.synchronize();
      long start = System.nanoTime();
      for (int i = 0; i < plan.copyRuns(); i++) {
        device.copy(dst, src, plan.copyBytes());
      }
      device.synchronize();
      double seconds = (System.nanoTime() - start) / 1e9;
      return 2.0 * plan.copyBytes() * plan.copyRuns() / seconds;
    } finally {
      device.free(dst);
      device.free(src);
    }
  }

  /**
   * Tokens per second of {@code batch} sequences decoding together, sequence s on pool blocks
   * {@code [s * blocksPerSequence, (s + 1) * blocksPerSequence)}, every step's logits copied back.
   * The cached positions hold whatever the pool holds: attention reads them all the same.
   */
  private static double decodeTokensPerSecond(Device device, DeviceDecoderSlice slice, DeviceKvPool pool, Plan plan,
      int batch) {
    int blocks = plan.blocksPerSequence();
    float[] embeds = inputRows(batch, plan.config().hiddenSize());
    Modality[] text = new Modality[batch];
    Arrays.fill(text, Modality.TEXT);
    float[] logits = new float[batch * slice.localVocabSize()];
    long start = 0;
    for (int step = 0; step < plan.warmupSteps() + plan.decodeSteps(); step++) {
      if (step == plan.warmupSteps()) {
        device.synchronize();
        start = System.nanoTime();
      }
      int position = plan.context() + step;
      List<SliceStep.Sequence> sequences = IntStream.range(0, batch).mapToObj(s -> new SliceStep.Sequence(
          IntStream.range(s * blocks, (s + 1) * blocks).toArray(), position, 1, LogitRows.LAST)).toList();
      slice.forward(new SliceStep(sequences, embeds, text), pool, logits);
    }
    double seconds = (System.nanoTime() - start) / 1e9;
    return finite(logits) ? (double) batch * plan.decodeSteps() / seconds : Double.NaN;
  }

  /** Seconds per prefill of the plan's prompt (logits of its last row), sequence 0's blocks. */
  private static double prefillSeconds(Device device, DeviceDecoderSlice slice, DeviceKvPool pool, Plan plan) {
    int n = plan.prefillTokens();
    float[] embeds = inputRows(n, plan.config().hiddenSize());
    Modality[] text = new Modality[n];
    Arrays.fill(text, Modality.TEXT);
    SliceStep step = new SliceStep(List.of(new SliceStep.Sequence(IntStream.range(0, plan.blocksPerSequence()).toArray(),
        0, n, LogitRows.LAST)), embeds, text);
    float[] logits = new float[slice.localVocabSize()];
    slice.forward(step, pool, logits);
    device.synchronize();
    long start = System.nanoTime();
    for (int i = 0; i < plan.prefillRuns(); i++) {
      slice.forward(step, pool, logits);
    }
    double seconds = (System.nanoTime() - start) / 1e9 / plan.prefillRuns();
    return finite(logits) ? seconds : Double.NaN;
  }

  /** {@code numRows} input rows, normal values (an embedding's scale does not matter after the first norm). */
  private static float[] inputRows(int numRows, int hiddenSize) {
    Random random = new Random(5);
    float[] rows = new float[numRows * hiddenSize];
    for (int i = 0; i < rows.length; i++) {
      rows[i] = (float) random.nextGaussian();
    }
    return rows;
  }

  private static boolean finite(float[] values) {
    for (float v : values) {
      if (!Float.isFinite(v)) {
        return false;
      }
    }
    return true;
  }
}
