package dev.owlery.cli;

import dev.owlery.engine.checkpoint.SafetensorsCheckpoint;
import dev.owlery.engine.config.ModelConfig;
import dev.owlery.engine.decoder.Decoder;
import dev.owlery.engine.decoder.DecoderSequence;
import dev.owlery.engine.decoder.LogitRows;
import dev.owlery.engine.decoder.Modality;
import dev.owlery.engine.kernel.Kernels;
import dev.owlery.engine.kernel.ScalarKernels;
import dev.owlery.engine.kernel.VectorKernels;
import dev.owlery.engine.sampling.Sampler;
import dev.owlery.engine.tensor.DType;
import dev.owlery.engine.tensor.Matrix;
import java.io.PrintWriter;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code owlery bench}: the matmul kernel in GFLOP/s and the decoder's prefill and decode tokens/s,
 * vector kernels against the scalar reference in the same run, printed as a table with ratios.
 */
@Command(name = "bench", mixinStandardHelpOptions = true,
    description = "Measure the matmul kernel (GFLOP/s) and decoder prefill/decode (tokens/s), vector vs scalar.")
public final class BenchCommand implements Callable<Integer> {

  @Spec
  CommandLine.Model.CommandSpec spec;

  @Option(names = "--model", description = "Model directory (config.json + model.safetensors) for the decode benchmark.")
  Path model;

  @Option(names = "--threads", split = ",", description = "Vector kernel thread counts to measure (default: all processors).")
  List<Integer> threads;

  @Option(names = "--rows", defaultValue = "4096", description = "Matmul benchmark rows (default ${DEFAULT-VALUE}).")
  int rows;

  @Option(names = "--cols", defaultValue = "4096", description = "Matmul benchmark columns (default ${DEFAULT-VALUE}).")
  int cols;

  @Option(names = "--dtypes", split = ",", defaultValue = "F16,BF16,F32", description = "Weight dtypes for the matmul benchmark.")
  List<DType> dtypes;

  @Option(names = "--matmul-tokens", split = ",", defaultValue = "1,128",
      description = "Tokens per matmul call: 1 is decode (matrix-vector), more is prefill (default ${DEFAULT-VALUE}).")
  List<Integer> matmulTokens;

  @Option(names = "--prompt-tokens", defaultValue = "128", description = "Prefill length (default ${DEFAULT-VALUE}).")
  int promptTokens;

  @Option(names = "--decode-tokens", defaultValue = "64", description = "Decode steps (default ${DEFAULT-VALUE}).")
  int decodeTokens;

  @Option(names = "--reference-tokens", defaultValue = "4",
      description = "Prefill and decode lengths for the slow scalar reference (default ${DEFAULT-VALUE}).")
  int referenceTokens;

  @Option(names = "--skip-matmul", description = "Only run the model benchmark.")
  boolean skipMatmul;

  public static void main(String[] args) {
    System.exit(new CommandLine(new BenchCommand()).execute(args));
  }

  @Override
  public Integer call() {
    PrintWriter out = spec.commandLine().getOut();
    List<Integer> threadCounts = threads == null ? List.of(Runtime.getRuntime().availableProcessors()) : threads;
    for (int t : threadCounts) {
      if (t < 1) {
        throw new CommandLine.ParameterException(spec.commandLine(), "--threads must be >= 1, got " + t);
      }
    }
    if (!skipMatmul) {
      benchMatmul(out, threadCounts);
    }
    if (model != null) {
      benchModel(out, threadCounts);
    }
    out.flush();
    return 0;
  }

  private void benchMatmul(PrintWriter out, List<Integer> threadCounts) {
    out.printf("matmul %d x %d, weights read in place; scalar runs at most --reference-tokens tokens%n", rows, cols);
    out.printf("%-5s %6s %-12s %7s %10s %9s %8s %8s%n", "dtype", "tokens", "kernels", "threads", "ms/call", "GFLOP/s",
        "GB/s", "ratio");
    try (Arena arena = Arena.ofShared()) {
      for (DType dtype : dtypes) {
        Matrix w = randomMatrix(arena, dtype, rows, cols);
        for (int tokens : matmulTokens) {
          if (tokens < 1) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--matmul-tokens must be >= 1, got " + tokens);
          }
          float[] x = new float[tokens * cols];
          float[] y = new float[tokens * rows];
          SplittableRandom random = new SplittableRandom(1);
          for (int i = 0; i < x.length; i++) {
            x[i] = (float) random.nextDouble(-1, 1);
          }
          int scalarTokens = Math.min(tokens, Math.max(1, referenceTokens));
          double scalarSeconds = timeMatmul(new ScalarKernels(), w, x, y, scalarTokens, 0.5);
          double scalarFlops = 2.0 * rows * cols * scalarTokens / scalarSeconds;
          printMatmulRow(out, dtype, scalarTokens, "scalar", 1, scalarSeconds, scalarFlops);
          for (int t : threadCounts) {
            try (VectorKernels kernels = new VectorKernels(t)) {
              printMatmulRow(out, dtype, tokens, kernels.name(), t, timeMatmul(kernels, w, x, y, tokens, 1.0),
                  scalarFlops);
            }
          }
        }
      }
    }
    out.println();
  }

  /** One table row; the ratio is to the scalar reference's GFLOP/s, which may have run fewer tokens. */
  private void printMatmulRow(PrintWriter out, DType dtype, int tokens, String kernels, int t, double seconds,
      double scalarFlops) {
    double flops = 2.0 * rows * cols * tokens / seconds;
    double bytes = (double) rows * cols * dtype.byteSize();
    out.printf("%-5s %6d %-12s %7d %10.3f %9.2f %8.2f %7.1fx%n", dtype, tokens, kernels, t, seconds * 1e3,
        flops / 1e9, bytes / seconds / 1e9, flops / scalarFlops);
    out.flush();
  }

  /**
   * Seconds per call: warm up, then the best of five batches lasting {@code minSeconds} in all (the
   * best batch is the one least disturbed by other load on a shared host).
   */
  private static double timeMatmul(Kernels kernels, Matrix w, float[] x, float[] y, int tokens, double minSeconds) {
    for (int i = 0; i < 3; i++) {
      kernels.matmul(w, x, 0, y, 0, tokens);
    }
    double best = Double.MAX_VALUE;
    for (int batch = 0; batch < 5; batch++) {
      int calls = 0;
      long start = System.nanoTime();
      long elapsed;
      do {
        kernels.matmul(w, x, 0, y, 0, tokens);
        calls++;
        elapsed = System.nanoTime() - start;
      } while (elapsed < minSeconds / 5 * 1e9 || calls < 2);
      best = Math.min(best, elapsed / 1e9 / calls);
    }
    return best;
  }

  private static Matrix randomMatrix(Arena arena, DType dtype, int rows, int cols) {
    long n = (long) rows * cols;
    MemorySegment data = arena.allocate(n * dtype.byteSize(), 64);
    ValueLayout.OfFloat f32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    ValueLayout.OfShort i16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    SplittableRandom random = new SplittableRandom(dtype.ordinal());
    for (long i = 0; i < n; i++) {
      float v = (float) random.nextDouble(-0.05, 0.05);
      switch (dtype) {
        case F32 -> data.setAtIndex(f32, i, v);
        case F16 -> data.setAtIndex(i16, i, Float.floatToFloat16(v));
        case BF16 -> data.setAtIndex(i16, i, (short) (Float.floatToRawIntBits(v) >>> 16));
        case I64, I32, U8 -> throw new IllegalArgumentException("--dtypes takes F32, F16 or BF16, not " + dtype);
      }
    }
    return new Matrix("bench", data, dtype, rows, cols, cols, 0);
  }

  private void benchModel(PrintWriter out, List<Integer> threadCounts) {
    ModelConfig config = ModelConfig.load(model);
    try (SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint.openFile(model.resolve("model.safetensors"))) {
      out.printf("model %s: %d layers, hidden %d, heads %d/%d kv, vocab %d; prefill %d tokens, decode %d tokens%n",
          model, config.text().numLayers(), config.text().hiddenSize(), config.text().numHeads(),
          config.text().numKvHeads(), config.text().vocabSize(), promptTokens, decodeTokens);
      long streamed = decodeStreamedBytes(checkpoint);
      out.printf("decode reads %.2f GB of weights per token (all but the embedding table)%n", streamed / 1e9);
      out.printf("%-12s %7s %15s %15s %12s %12s %14s%n", "kernels", "threads", "prefill tok/s", "decode tok/s",
          "prefill x", "decode x", "decode GB/s");
      double[] reference = runModel(checkpoint, config, new ScalarKernels(), referenceTokens, referenceTokens);
      out.printf("%-12s %7d %15.2f %15.3f %11.1fx %11.1fx %14.2f%n", "scalar", 1, reference[0], reference[1], 1.0, 1.0,
          reference[1] * streamed / 1e9);
      out.flush();
      for (int t : threadCounts) {
        try (VectorKernels kernels = new VectorKernels(t)) {
          double[] r = runModel(checkpoint, config, kernels, promptTokens, decodeTokens);
          out.printf("%-12s %7d %15.2f %15.3f %11.1fx %11.1fx %14.2f%n", kernels.name(), t, r[0], r[1],
              r[0] / reference[0], r[1] / reference[1], r[1] * streamed / 1e9);
          out.flush();
        }
      }
    }
  }

  /** Bytes of every tensor but the embedding table, which decode reads one row of. */
  private static long decodeStreamedBytes(SafetensorsCheckpoint checkpoint) {
    long bytes = 0;
    for (String name : checkpoint.names()) {
      if (!name.contains("embed_tokens")) {
        bytes += checkpoint.tensor(name).data().byteSize();
      }
    }
    return bytes;
  }

  /** {prefill tokens/s, decode tokens/s} of one kernel set, after a short warm-up. */
  private static double[] runModel(SafetensorsCheckpoint checkpoint, ModelConfig config, Kernels kernels,
      int numPrompt, int numDecode) {
    try (Decoder decoder = Decoder.load(checkpoint, config, 1, kernels)) {
      int hidden = config.text().hiddenSize();
      int[] ids = new SplittableRandom(7).ints(numPrompt, 3, config.text().vocabSize()).toArray();
      float[] embeds = new float[numPrompt * hidden];
      decoder.embed(ids, 0, numPrompt, embeds, 0);
      Modality[] modalities = new Modality[numPrompt];
      Arrays.fill(modalities, Modality.TEXT);
      float[] logits = new float[config.text().vocabSize()];
      int capacity = numPrompt + numDecode + 8;
      // warm-up: a short prompt and a few steps, so the timed run is compiled code
      DecoderSequence warm = decoder.newSequence(capacity);
      decoder.forward(warm, embeds, 0, modalities, Math.min(numPrompt, 4), LogitRows.LAST, logits);
      decodeLoop(decoder, warm, logits, Math.min(numDecode, 4));

      DecoderSequence sequence = decoder.newSequence(capacity);
      long start = System.nanoTime();
      decoder.forward(sequence, embeds, 0, modalities, numPrompt, LogitRows.LAST, logits);
      double prefill = numPrompt / ((System.nanoTime() - start) / 1e9);
      start = System.nanoTime();
      decodeLoop(decoder, sequence, logits, numDecode);
      double decode = numDecode / ((System.nanoTime() - start) / 1e9);
      return new double[] {prefill, decode};
    }
  }

  private static void decodeLoop(Decoder decoder, DecoderSequence sequence, float[] logits, int steps) {
    float[] row = new float[decoder.config().hiddenSize()];
    Modality[] text = {Modality.TEXT};
    for (int i = 0; i < steps; i++) {
      decoder.embed(Sampler.argmax(logits, logits.length), row, 0);
      decoder.forward(sequence, row, 0, text, 1, LogitRows.LAST, logits);
    }
  }
}
