package dev.owlery.cli;

import dev.owlery.coordinator.model.ServedModel;
import dev.owlery.coordinator.scheduler.CoordinatorStepBench;
import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.checkpoint.SafetensorsCheckpoint;
import dev.owlery.engine.config.ModelConfig;
import dev.owlery.engine.decoder.Decoder;
import dev.owlery.engine.decoder.DecoderSequence;
import dev.owlery.engine.decoder.LogitRows;
import dev.owlery.engine.decoder.Modality;
import dev.owlery.engine.kernel.AttentionTime;
import dev.owlery.engine.kernel.Kernels;
import dev.owlery.engine.kernel.KernelsProvider;
import dev.owlery.engine.kernel.KernelsProvider.KernelSet;
import dev.owlery.engine.kernel.MemoryBandwidth;
import dev.owlery.engine.kernel.ScalarKernels;
import dev.owlery.engine.sampling.Sampler;
import dev.owlery.engine.tensor.DType;
import dev.owlery.engine.tensor.Matrix;
import dev.owlery.engine.tensor.Tensor;
import dev.owlery.engine.tensor.WeightFormat;
import dev.owlery.engine.vision.SyntheticVisionTower;
import dev.owlery.engine.vision.VisionTower;
import dev.owlery.shard.collective.AllReduceBench;
import dev.owlery.visionworker.HostKernels;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import java.util.stream.Stream;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code owlery bench}: the matmul kernel in GFLOP/s and the decoder's prefill and decode tokens/s,
 * vector kernels against the scalar reference in the same run, printed as a table with ratios; decode
 * also as a fraction of the read bandwidth a plain vectorised sum reaches in the same process.
 */
@Command(name = "bench", mixinStandardHelpOptions = true,
    description = "Measure memory bandwidth, the matmul kernel (GFLOP/s) and decoder prefill/decode (tokens/s), vector vs scalar.")
public final class BenchCommand implements Callable<Integer> {

  /** Prompt tokens of the warm-up prefill (at most the timed prompt). */
  private static final int WARM_UP_PROMPT = 160;
  /** Decode steps of the warm-up (at most the timed steps). */
  private static final int WARM_UP_DECODE = 32;

  @Spec
  CommandLine.Model.CommandSpec spec;

  @Option(names = "--model", description = "Model directory (config.json + model.safetensors) for the decode benchmark.")
  Path model;

  @Option(names = "--threads", split = ",", description = "Vector kernel thread counts to measure (default: all processors).")
  List<Integer> threads;

  @Option(names = "--decoder-kernels", split = ",", defaultValue = "vector", converter = DecoderKernelsConverter.class,
      description = "Kernel sets for the matmul and model benchmarks, taking turns: vector (the Vector API), native "
          + "(decode's F16, BF16, Q8_0 and Q4_0 products, Q8_0 and Q4_0 products of several tokens on AMX (Q8_0) or "
          + "AVX-512 VNNI and F16 and BF16 products of 2 to 32 tokens, in C compiled on this machine, Q8_0 and Q4_0 "
          + "times activations quantized to Q8_0 as llama.cpp multiplies them; needs a C compiler), native-bf16 "
          + "(native, prompts in BF16 on AVX512_BF16: attention, BF16 weights' products of more than 32 tokens) and "
          + "auto (what the workers run by default: native where it can run, else vector; for --weights q8_0 and q4_0, "
          + "native-bf16 where the CPU has AVX512_BF16); default ${DEFAULT-VALUE}.")
  List<KernelSet> decoderKernels;

  @Option(names = "--rows", defaultValue = "4096", description = "Matmul benchmark rows (default ${DEFAULT-VALUE}).")
  int rows;

  @Option(names = "--cols", defaultValue = "4096", description = "Matmul benchmark columns (default ${DEFAULT-VALUE}).")
  int cols;

  @Option(names = "--dtypes", split = ",", defaultValue = "F16,BF16,F32,Q8_0,Q4_0",
      description = "Weight dtypes for the matmul benchmark (default ${DEFAULT-VALUE}).")
  List<DType> dtypes;

  @Option(names = "--weights", split = ",", defaultValue = "stored", converter = WeightFormatConverter.class,
      description = "Weight formats for the model benchmark: mapped, stored, f16, bf16, q8_0, q4_0 (default ${DEFAULT-VALUE}).")
  List<WeightFormat> weights;

  @Option(names = "--bandwidth-mib", defaultValue = "512",
      description = "Size of the bandwidth probe's buffer in MiB, far beyond the caches (default ${DEFAULT-VALUE}; 0 skips it).")
  int bandwidthMib;

  @Option(names = "--matmul-tokens", split = ",", defaultValue = "1,16,128",
      description = "Tokens per matmul call: 1 is decode (matrix-vector), more is prefill (default ${DEFAULT-VALUE}).")
  List<Integer> matmulTokens;

  @Option(names = "--prompt-tokens", defaultValue = "128", description = "Prefill length (default ${DEFAULT-VALUE}).")
  int promptTokens;

  @Option(names = "--decode-tokens", defaultValue = "64", description = "Decode steps (default ${DEFAULT-VALUE}).")
  int decodeTokens;

  @Option(names = "--rounds", defaultValue = "3",
      description = "With --model: timed prefill + decode runs per thread count; the thread counts take turns on one "
          + "loaded model, round after round, and each row is their median (default ${DEFAULT-VALUE}).")
  int rounds;

  @Option(names = "--reference-tokens", defaultValue = "4",
      description = "Prefill and decode lengths for the slow scalar reference (default ${DEFAULT-VALUE}).")
  int referenceTokens;

  @Option(names = "--batch", defaultValue = "0",
      description = "With --model: also time batched decode of this many sequences, each after a prompt of --batch-prompt "
          + "tokens, one token per sequence per step for --decode-tokens steps (llama-batched-bench's generation speed; "
          + "default ${DEFAULT-VALUE}: not run).")
  int batch;

  @Option(names = "--batch-prompt", defaultValue = "32", description = "Prompt tokens per sequence of --batch (default ${DEFAULT-VALUE}).")
  int batchPrompt;

  @Option(names = "--skip-matmul", description = "Only run the model benchmark.")
  boolean skipMatmul;

  @Mixin
  DeviceOptions device;

  @Option(names = "--coordinator-step", defaultValue = "0",
      description = "Only time the coordinator's own work on a decode step of this many sequences over --model's "
          + "vocabulary and tokenizer (gather or merge, sample, detokenize, stream), with the whole logit rows crossing "
          + "and with the ranks' top candidates, and the bytes of one rank's answer (default ${DEFAULT-VALUE}: not run).")
  int coordinatorStep;

  @Option(names = "--coordinator-ranks", defaultValue = "2",
      description = "With --coordinator-step: the ranks the vocabulary is split over (default ${DEFAULT-VALUE}).")
  int coordinatorRanks;

  @Option(names = "--synthetic-vision",
      description = "Also time the vision tower and abstractor per image at mPLUG-Owl2's real size (ViT-L/14 at 448 px), "
          + "on seeded random F16 weights written to a temporary folder.")
  boolean syntheticVision;

  @Option(names = "--vision-kernels", split = ",", defaultValue = "vector",
      converter = dev.owlery.cli.node.VisionWorkerCommand.HostKernelsConverter.class,
      description = "With --synthetic-vision: the kernel sets timed, taking turns image by image: vector (float32) and "
          + "onednn-bf16 (matmuls in BF16 on the system's oneDNN, as PyTorch's BF16 stack computes them); default "
          + "${DEFAULT-VALUE}.")
  List<HostKernels> visionKernels;

  @Option(names = "--vision-images", defaultValue = "3",
      description = "With --synthetic-vision: images timed per kernel set, after one to warm up; the median is "
          + "reported (default ${DEFAULT-VALUE}).")
  int visionImages;

  @Option(names = "--all-reduce", defaultValue = "0", paramLabel = "RANKS",
      description = "Only time the all-reduce of a tensor-parallel group of this many ranks on this host (threads of "
          + "this JVM with a Netty server each, on loopback), through gRPC messages and through shared memory "
          + "(--all-reduce-dir), side by side (default ${DEFAULT-VALUE}: not run).")
  int allReduceRanks;

  @Option(names = "--all-reduce-floats", split = ",", defaultValue = "2048,4096,65536,524288",
      description = "With --all-reduce: the sizes of the all-reduces, in floats (default ${DEFAULT-VALUE}: one decode "
          + "row of a 1.1B and a 7B, 16 and 128 rows of a 7B).")
  List<Integer> allReduceFloats;

  @Option(names = "--all-reduce-iterations", defaultValue = "300",
      description = "With --all-reduce: all-reduces timed per size, after as many to warm up (default ${DEFAULT-VALUE}).")
  int allReduceIterations;

  @Option(names = "--all-reduce-dir", defaultValue = "/dev/shm",
      description = "With --all-reduce: the folder of shared memory (default ${DEFAULT-VALUE}).")
  Path allReduceDir;

  /** Parses {@code --decoder-kernels}' names: auto, vector, native or native-bf16 (the scalar reference runs anyway). */
  static final class DecoderKernelsConverter implements CommandLine.ITypeConverter<KernelSet> {
    @Override
    public KernelSet convert(String value) {
      KernelSet set = KernelSet.parse(value);
      if (set == KernelSet.SCALAR) {
        throw new CommandLine.TypeConversionException("the scalar reference is timed anyway; name auto, vector, native or native-bf16");
      }
      return set;
    }
  }

  /** Stops the threads of kernels that hold some. */
  private static void close(Kernels kernels) {
    if (kernels instanceof AutoCloseable closeable) {
      try {
        closeable.close();
      } catch (Exception e) {
        throw new IllegalStateException("closing the " + kernels.name() + " kernels", e);
      }
    }
  }

  public static void main(String[] args) {
    System.exit(new CommandLine(new BenchCommand()).execute(args));
  }

  @Override
  public Integer call() {
    device.requireUsable();
    PrintWriter out = spec.commandLine().getOut();
    if (coordinatorStep > 0) {
      benchCoordinatorStep(out);
      return 0;
    }
    if (allReduceRanks > 0) {
      benchAllReduce(out);
      return 0;
    }
    List<Integer> threadCounts = threads == null ? List.of(Runtime.getRuntime().availableProcessors()) : threads;
    for (int t : threadCounts) {
      if (t < 1) {
        throw new CommandLine.ParameterException(spec.commandLine(), "--threads must be >= 1, got " + t);
      }
    }
    if (referenceTokens < 1) {
      // the scalar row is the ratio columns' baseline; 0 tokens failed only inside the model run
      throw new CommandLine.ParameterException(spec.commandLine(),
          "--reference-tokens must be >= 1, got " + referenceTokens);
    }
    if (rounds < 1) {
      throw new CommandLine.ParameterException(spec.commandLine(), "--rounds must be >= 1, got " + rounds);
    }
    if (visionImages < 1) {
      throw new CommandLine.ParameterException(spec.commandLine(), "--vision-images must be >= 1, got " + visionImages);
    }
    try (MemoryBandwidth probe = bandwidthMib > 0 ? new MemoryBandwidth((long) bandwidthMib << 20) : null) {
      Map<Integer, Double> bandwidth = probe != null ? benchBandwidth(out, probe, threadCounts) : Map.of();
      if (!skipMatmul) {
        benchMatmul(out, threadCounts);
      }
      if (model != null) {
        benchModel(out, threadCounts, probe, bandwidth);
      }
    }
    if (syntheticVision) {
      new VisionBench(SyntheticVisionTower.Geometry.mplugOwl2(), weights, visionKernels, threadCounts, visionImages)
          .run(out);
    }
    out.flush();
    return 0;
  }

  /** Bytes per second a vectorised sum reads from a buffer beyond the caches, per thread count. */
  private static Map<Integer, Double> benchBandwidth(PrintWriter out, MemoryBandwidth probe, List<Integer> threadCounts) {
    Map<Integer, Double> bytesPerSecond = new HashMap<>();
    out.printf("memory read bandwidth (vectorised sum of %d MiB, best of 5)%n", probe.bytes() >> 20);
    out.printf("%7s %8s%n", "threads", "GB/s");
    for (int t : threadCounts) {
      probe.readBytesPerSecond(t, 2); // warm-up: compiled code, pages in the TLB
      double rate = probe.readBytesPerSecond(t, 5);
      bytesPerSecond.put(t, rate);
      out.printf("%7d %8.2f%n", t, rate / 1e9);
      out.flush();
    }
    out.println();
    return bytesPerSecond;
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
          int scalarTokens = Math.min(tokens, referenceTokens);
          double scalarSeconds = timeMatmul(new ScalarKernels(), w, x, y, scalarTokens, 0.5);
          double scalarFlops = 2.0 * rows * cols * scalarTokens / scalarSeconds;
          printMatmulRow(out, dtype, scalarTokens, "scalar", 1, scalarSeconds, scalarFlops);
          for (KernelSet set : decoderKernels) {
            for (int t : threadCounts) {
              Kernels kernels = KernelsProvider.create(set, t);
              try {
                printMatmulRow(out, dtype, tokens, kernels.name(), t, timeMatmul(kernels, w, x, y, tokens, 1.0),
                    scalarFlops);
              } finally {
                close(kernels);
              }
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
    double bytes = dtype.bytesOf((long) rows * cols);
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
    if (dtype == DType.Q8_0 || dtype == DType.Q4_0) {
      WeightFormat format = dtype == DType.Q8_0 ? WeightFormat.Q8_0 : WeightFormat.Q4_0;
      return format.convert(randomMatrix(arena, DType.F32, rows, cols), arena);
    }
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
        case I64, I32, U8, Q8_0, Q4_0 ->
            throw new IllegalArgumentException("--dtypes takes F32, F16, BF16, Q8_0 or Q4_0, not " + dtype);
      }
    }
    return new Matrix("bench", data, dtype, rows, cols, cols, 0);
  }

  /**
   * The model's rows. With a probe, each round's decode is followed by a probe read at the same
   * thread count, and "of probe" is the median of the rounds' decode / probe: on this shared host the
   * probe's best-of-5 at the start ranged 23-43 GB/s on one thread from one run to the next.
   */
  private void benchModel(PrintWriter out, List<Integer> threadCounts, MemoryBandwidth probe,
      Map<Integer, Double> bandwidth) {
    ModelConfig config = ModelConfig.load(model);
    Path file = model.resolve("model.safetensors");
    out.printf("model %s: %d layers, hidden %d, heads %d/%d kv, vocab %d; prefill %d tokens, decode %d tokens%n",
        model, config.text().numLayers(), config.text().hiddenSize(), config.text().numHeads(),
        config.text().numKvHeads(), config.text().vocabSize(), promptTokens, decodeTokens);
    out.printf("%-12s %-7s %7s %15s %15s %10s %10s %12s %10s %14s%n", "kernels", "weights", "threads", "prefill tok/s",
        "decode tok/s", "prefill x", "decode x", "decode GB/s", "of probe", "prefill attn");
    long mappedBytes = streamedBytes(file, WeightFormat.MAPPED);
    double[] reference = median(runModel(file, WeightFormat.MAPPED, config, List.of(new ScalarKernels()), List.of(1),
        null, referenceTokens, referenceTokens, 1)[0]);
    Double referenceBandwidth = bandwidth.get(1);
    printModelRow(out, "scalar", WeightFormat.MAPPED, 1, reference, reference, mappedBytes,
        referenceBandwidth == null ? null : reference[1] * mappedBytes / referenceBandwidth);
    // per weight format, every decoder kernel set at every thread count, set by set (auto's depends
    // on the format); all of them take turns in each round
    List<String> scaling = new ArrayList<>();
    for (WeightFormat format : weights) {
      List<Kernels> sets = new ArrayList<>();
      List<Integer> setThreads = new ArrayList<>();
      try {
        for (KernelSet set : decoderKernels) {
          for (int t : threadCounts) {
            sets.add(KernelsProvider.create(set, t, format));
            setThreads.add(t);
          }
        }
        long streamed = streamedBytes(file, format);
        double[][][] r = runModel(file, format, config, sets, setThreads, probe, promptTokens, decodeTokens, rounds);
        for (int k = 0; k < sets.size(); k++) {
          printModelRow(out, sets.get(k).name(), format, setThreads.get(k), median(r[k]), reference, streamed,
              probe == null ? null : median(Arrays.stream(r[k]).mapToDouble(round -> round[1] * streamed / round[3])
                  .toArray()));
        }
        // prefill runs the same kernels in every set: its scaling over the first set's thread counts
        for (int k = 1; k < threadCounts.size(); k++) {
          scaling.add(prefillScaling(format, setThreads.get(k), setThreads.get(0), r[k], r[0]));
        }
      } finally {
        sets.forEach(BenchCommand::close);
      }
    }
    out.println("decode GB/s = decode tok/s x the bytes of weights decode reads per token (all but the embedding table,"
        + " in the format held); of probe = that / the bandwidth probe read at the same thread count right after the"
        + " round's decode; prefill attn = the share of the prefill's wall time spent in attention; each figure the median"
        + " of %d round(s), the thread counts taking turns on one loaded model".formatted(rounds));
    scaling.forEach(out::println);
    if (batch > 0) {
      benchBatchedDecode(out, threadCounts, file, config);
    }
  }

  private void benchBatchedDecode(PrintWriter out, List<Integer> threadCounts, Path file, ModelConfig config) {
    out.printf("%nbatched decode: %d sequences after %d prompt tokens each, %d steps of one token per sequence%n", batch,
        batchPrompt, decodeTokens);
    out.printf("%-12s %-7s %7s %12s %10s %10s %10s%n", "kernels", "weights", "threads", "tok/s", "matmul", "attention",
        "rest");
    for (WeightFormat format : weights) {
      for (KernelSet set : decoderKernels) {
        for (int t : threadCounts) {
          Kernels kernels = KernelsProvider.create(set, t, format);
          try {
            BatchedDecodeBench.Result r =
                BatchedDecodeBench.run(file, format, config.text(), kernels, batch, batchPrompt, decodeTokens);
            out.printf("%-12s %-7s %7d %12.2f %9.1f%% %9.1f%% %9.1f%%%n", kernels.name(), format.flagName(), t,
                r.tokensPerSecond(), 100 * r.matmulShare(), 100 * r.attentionShare(),
                100 * (1 - r.matmulShare() - r.attentionShare()));
            out.flush();
          } finally {
            close(kernels);
          }
        }
      }
    }
  }

  private void benchAllReduce(PrintWriter out) {
    if (allReduceRanks < 2 || allReduceIterations < 1 || allReduceFloats.stream().anyMatch(n -> n < 1)) {
      throw new CommandLine.ParameterException(spec.commandLine(), "--all-reduce needs at least 2 ranks, "
          + "--all-reduce-iterations and every --all-reduce-floats at least 1");
    }
    out.printf("all-reduce on this host: %d ranks (threads of one JVM, each with a Netty server on loopback), "
        + "microseconds per all-reduce on rank 0, median (mean) of %d after %d to warm up%n", allReduceRanks,
        allReduceIterations, allReduceIterations);
    List<AllReduceBench.Result> results;
    try {
      results = AllReduceBench.run(allReduceRanks, allReduceFloats, allReduceIterations, allReduceDir);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    out.printf("%10s %22s %22s %16s%n", "floats", "grpc us", "shared-memory us", "grpc / shared");
    int sizes = allReduceFloats.size();
    for (int s = 0; s < sizes; s++) {
      AllReduceBench.Result grpc = results.get(s);
      AllReduceBench.Result shared = results.get(sizes + s);
      out.printf("%10d %11.1f (%8.1f) %11.1f (%8.1f) %15.2fx%n", grpc.floats(), grpc.medianMicros(), grpc.meanMicros(),
          shared.medianMicros(), shared.meanMicros(), grpc.medianMicros() / shared.medianMicros());
    }
    out.flush();
  }

  private void benchCoordinatorStep(PrintWriter out) {
    if (model == null) {
      throw new CommandLine.ParameterException(spec.commandLine(),
          "--coordinator-step needs --model (its vocabulary and tokenizer)");
    }
    if (coordinatorRanks < 1) {
      throw new CommandLine.ParameterException(spec.commandLine(), "--coordinator-ranks must be >= 1, got " + coordinatorRanks);
    }
    ServedModel served = ServedModel.load(model, model.getFileName().toString());
    int steps = 50;
    out.printf("coordinator's work on one decode step: %d sequences, vocabulary %d over %d ranks, mean of %d steps, "
        + "sampling on %d threads%n", coordinatorStep, served.vocabSize(), coordinatorRanks, steps,
        Runtime.getRuntime().availableProcessors());
    out.printf("%-10s %16s %16s %18s %18s%n", "sampling", "rows ms/step", "candidates ms", "rows B/rank", "candidates B/rank");
    List<CoordinatorStepBench.Result> results;
    try {
      results = CoordinatorStepBench.run(served, coordinatorStep, coordinatorRanks, steps);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return;
    }
    for (CoordinatorStepBench.Result r : results) {
      out.printf("%-10s %16.2f %16.2f %18d %18d%n", r.workload(), r.wholeRows().millisPerStep(),
          r.candidates().millisPerStep(), r.wholeRows().bytesPerRank(), r.candidates().bytesPerRank());
      out.flush();
    }
  }

  private static void printModelRow(PrintWriter out, String kernels, WeightFormat format, int threads, double[] r,
      double[] reference, long streamed, Double ofProbe) {
    out.printf("%-12s %-7s %7d %15.2f %15.3f %9.1fx %9.1fx %12.2f %10s %13.1f%%%n", kernels, format.flagName(), threads,
        r[0], r[1], r[0] / reference[0], r[1] / reference[1], r[1] * streamed / 1e9,
        ofProbe == null ? "-" : "%.0f%%".formatted(100 * ofProbe), 100 * r[2]);
    out.flush();
  }

  /** The median of {@code values} (the mean of the middle two when their number is even). */
  static double median(double[] values) {
    double[] sorted = values.clone();
    Arrays.sort(sorted);
    int n = sorted.length;
    return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  }

  /** Bytes of every weight but the embedding table, which decode reads one row of, in {@code format}. */
  private static long streamedBytes(Path file, WeightFormat format) {
    try (SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint.openFile(file)) {
      long bytes = 0;
      for (String name : checkpoint.names()) {
        Tensor tensor = checkpoint.tensor(name);
        boolean converted = name.endsWith("_proj.weight") || name.equals("lm_head.weight");
        if (!name.contains("embed_tokens")) {
          bytes += converted ? format.bytesOf(tensor) : tensor.data().byteSize();
        }
      }
      return bytes;
    }
  }

  /**
   * {prefill tokens/s, decode tokens/s, attention's share of the prefill, the probe's bytes/s right
   * after the decode at the set's thread count (NaN without a probe)} per kernel set and round,
   * on one checkpoint opened (and its weights converted) for this run: the model is loaded once
   * under kernels that switch between the sets, each set is warmed up, then every round times each
   * set in turn. Host load that comes and goes then weighs on every set alike: on this 2-core host,
   * one prefill per thread count, each on its own load of the model, put 2 threads at 1.53-1.65x one,
   * and the same build's sets taking turns at 1.75-1.86x (median 1.79) over eight rounds.
   */
  private static double[][][] runModel(Path file, WeightFormat format, ModelConfig config,
      List<? extends Kernels> kernelSets, List<Integer> threadCounts, MemoryBandwidth probe, int numPrompt,
      int numDecode, int rounds) {
    SwitchedKernels kernels = new SwitchedKernels(kernelSets.getFirst());
    try (Checkpoint checkpoint = SafetensorsCheckpoint.openFile(file).withWeightFormat(format);
        Decoder decoder = Decoder.load(checkpoint, config, 1, kernels)) {
      int hidden = config.text().hiddenSize();
      int[] ids = new SplittableRandom(7).ints(numPrompt, 3, config.text().vocabSize()).toArray();
      float[] embeds = new float[numPrompt * hidden];
      decoder.embed(ids, 0, numPrompt, embeds, 0);
      Modality[] modalities = new Modality[numPrompt];
      Arrays.fill(modalities, Modality.TEXT);
      float[] logits = new float[config.text().vocabSize()];
      int capacity = numPrompt + numDecode + 8;
      // warm-up: a prompt long enough for every prefill kernel (the panel kernels start at 16
      // tokens, their wide tiles at 64) and a few steps, so the timed run is compiled code. With a
      // 4-token warm-up the first row measured (F16, 1 thread) compiled the panel kernels inside
      // its timed prefill: 46-49 tokens/s there against 69 in a later run of the same build. Decode
      // likewise: after 4 warm-up steps 32 timed steps of the 7B's widths (Q8_0, 2 threads) ran at
      // 18.6 tokens/s and 96 at 23.1, the compiler threads sharing the two cores with the decode.
      for (Kernels set : kernelSets) {
        kernels.select(set);
        DecoderSequence warm = decoder.newSequence(capacity);
        decoder.forward(warm, embeds, 0, modalities, Math.min(numPrompt, WARM_UP_PROMPT), LogitRows.LAST, logits);
        decodeLoop(decoder, warm, logits, Math.min(numDecode, WARM_UP_DECODE));
      }
      double[][][] results = new double[kernelSets.size()][rounds][];
      for (int round = 0; round < rounds; round++) {
        for (int k = 0; k < kernelSets.size(); k++) {
          kernels.select(kernelSets.get(k));
          DecoderSequence sequence = decoder.newSequence(capacity);
          AttentionTime.reset();
          long start = System.nanoTime();
          decoder.forward(sequence, embeds, 0, modalities, numPrompt, LogitRows.LAST, logits);
          long prefillNanos = System.nanoTime() - start;
          double attentionShare = (double) AttentionTime.nanos() / prefillNanos;
          start = System.nanoTime();
          decodeLoop(decoder, sequence, logits, numDecode);
          double decode = numDecode / ((System.nanoTime() - start) / 1e9);
          double bandwidth = probe == null ? Double.NaN : probe.readBytesPerSecond(threadCounts.get(k), 3);
          results[k][round] = new double[] {numPrompt / (prefillNanos / 1e9), decode, attentionShare, bandwidth};
        }
      }
      return results;
    }
  }

  /** Each column's median over the rounds. */
  private static double[] median(double[][] rounds) {
    double[] medians = new double[rounds[0].length];
    for (int c = 0; c < medians.length; c++) {
      int column = c;
      medians[c] = median(Arrays.stream(rounds).mapToDouble(r -> r[column]).toArray());
    }
    return medians;
  }

  /** The line stating how prefill scales: the median of the rounds' ratios, each round's sets timed back to back. */
  private static String prefillScaling(WeightFormat format, int threads, int baseThreads, double[][] rounds,
      double[][] baseRounds) {
    double[] ratios = new double[rounds.length];
    StringBuilder each = new StringBuilder();
    for (int i = 0; i < rounds.length; i++) {
      ratios[i] = rounds[i][0] / baseRounds[i][0];
      each.append(i == 0 ? "" : " ").append("%.2f".formatted(ratios[i]));
    }
    return "prefill %s, %d threads / %d: %.2fx (median of the rounds: %s)".formatted(format.flagName(), threads,
        baseThreads, median(ratios), each);
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
