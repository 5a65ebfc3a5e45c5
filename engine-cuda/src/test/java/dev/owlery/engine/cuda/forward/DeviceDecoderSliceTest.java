package dev.owlery.engine.cuda.forward;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.checkpoint.SafetensorsCheckpoint;
import dev.owlery.engine.config.LlamaConfig;
import dev.owlery.engine.config.ModelConfig;
import dev.owlery.engine.cuda.check.GreedyRun;
import dev.owlery.engine.cuda.runtime.CpuTwinDevice;
import dev.owlery.engine.decoder.DecoderSlice;
import dev.owlery.engine.decoder.Embedding;
import dev.owlery.engine.decoder.LogitRows;
import dev.owlery.engine.decoder.Modality;
import dev.owlery.engine.kernel.ScalarKernels;
import dev.owlery.engine.kv.KvCacheDtype;
import dev.owlery.engine.kv.PagedKvCache;
import dev.owlery.engine.parallel.Collective;
import dev.owlery.engine.parallel.InProcessGroup;
import dev.owlery.engine.tensor.WeightFormat;
import dev.owlery.engine.testing.Fixtures;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The device forward's launch sequence on the CPU twins of the kernels, against the engine's CPU
 * {@link DecoderSlice} on tiny-owl2 (MAM: text and visual rows): a 24-position prompt in chunks of
 * 8 rows over a block table with holes and out of order (blocks of 5 positions), then greedy decode
 * steps; batched steps; tensor parallelism of 2 against 1.
 */
class DeviceDecoderSliceTest {

  private static final int NUM_POSITIONS = 24;
  private static final int NUM_NEW = 6;
  private static final int CAPACITY = 8;
  private static final int BLOCK_SIZE = 5;
  private static final int NUM_BLOCKS = 16;
  /** 6 blocks of 5: the prompt's 24 positions and 6 more, in pool order 9, 3, 14, 0, 6, 11. */
  private static final int[] BLOCK_TABLE = {9, 3, 14, 0, 6, 11};

  /**
   * Max |logits(device, gemm64_f16) - logits(CPU)| with F16 weights on both sides over a 32-row step
   * of tiny-owl2 (|logits| <= 25): the GEMM rounds x to F16 (2^-11 relative) before every product
   * of both layers and lm_head; measured 1.2e-2 to 1.3e-2 on the twins when only the 32-row products
   * took the GEMM (the bound leaves a factor of about two), 1.7e-2 since the per-modality k/v
   * products of 8 rows or more take it too.
   */
  private static final double F16_GEMM_LOGITS_BOUND = 2.5e-2;

  private static LlamaConfig config;
  private static Checkpoint model;
  private static Embedding embedTokens;
  private static GreedyRun.Prompt prompt;

  @BeforeAll
  static void open() {
    Path dir = Fixtures.tinyOwl2();
    config = ModelConfig.load(dir).text();
    model = SafetensorsCheckpoint.openFile(dir.resolve("model.safetensors"));
    embedTokens = Embedding.load(model, config);
    try (Checkpoint reference = SafetensorsCheckpoint.openFile(dir.resolve("reference.safetensors"))) {
      float[] embeds = reference.tensor("llm.inputs_embeds", 1, NUM_POSITIONS, 64).toFloatArray();
      long[] indicators = reference.tensor("llm.modality_indicators", 1, NUM_POSITIONS).toLongArray();
      Modality[] modalities = new Modality[NUM_POSITIONS];
      for (int i = 0; i < NUM_POSITIONS; i++) {
        modalities[i] = Modality.ofIndicator(indicators[i]);
      }
      prompt = new GreedyRun.Prompt(embeds, modalities, BLOCK_TABLE);
    }
  }

  @AfterAll
  static void close() {
    if (model != null) {
      model.close();
    }
  }

  private static GreedyRun cpu(KvCacheDtype dtype) {
    DecoderSlice slice = new DecoderSlice(model, config, Collective.single(), new ScalarKernels(), CAPACITY);
    return GreedyRun.onCpu(slice, slice.newKvBlockPool(NUM_BLOCKS, BLOCK_SIZE, dtype), embedTokens, prompt, NUM_NEW);
  }

  private static GreedyRun device() {
    try (CpuTwinDevice device = new CpuTwinDevice()) {
      DeviceDecoderSlice slice = new DeviceDecoderSlice(device, model, config, Collective.single(), CAPACITY);
      return GreedyRun.onDevice(slice, slice.newKvPool(NUM_BLOCKS, BLOCK_SIZE), embedTokens, prompt, NUM_NEW);
    }
  }

  @Test
  void promptAndGreedyDecodeMatchTheCpuSliceWithTheSameF16PagedCache() {
    GreedyRun cpu = cpu(KvCacheDtype.F16);
    GreedyRun onDevice = device();
    double error = onDevice.maxAbsDifference(cpu);
    System.out.printf("device twins vs CPU slice, F16 paged KV on both: max |logits diff| %.3g%n", error);
    assertThat(onDevice.generated()).containsExactly(cpu.generated());
    // the twins compute with the CPU's ScalarKernels in the CPU's order, and the F16 stores round
    // alike: a launch with a wrong offset, grid, block-table slot or all-reduce moves the logits
    assertThat(error).isZero();
  }

  @Test
  void theF16CacheMovesTheLogitsFromTheFloat32CpuPathByLessThanItsBound() {
    GreedyRun cpu = cpu(KvCacheDtype.F32);
    GreedyRun onDevice = device();
    double error = onDevice.maxAbsDifference(cpu);
    System.out.printf("device twins (F16 KV) vs CPU slice (F32 KV): max |logits diff| %.3g%n", error);
    assertThat(onDevice.generated()).containsExactly(cpu.generated());
    assertThat(error).isLessThan(1.5e-2).isGreaterThan(0);
  }

  /** Logits of {@code steps} on a fresh twin device and pool; each step's rows in order. */
  private static List<float[]> runSteps(int tensorParallelRank, Collective collective, List<SliceStep> steps) {
    try (CpuTwinDevice device = new CpuTwinDevice()) {
      DeviceDecoderSlice slice = new DeviceDecoderSlice(device, model, config, collective, 16);
      DeviceKvPool pool = slice.newKvPool(24, BLOCK_SIZE);
      List<float[]> out = new ArrayList<>();
      for (SliceStep step : steps) {
        float[] logits = new float[step.numLogitRows() * slice.localVocabSize()];
        slice.forward(step, pool, logits);
        out.add(logits);
      }
      assertThat(slice.rank().rank()).isEqualTo(tensorParallelRank);
      return out;
    }
  }

  private static float[] rows(float[] embeds, int from, int to) {
    return java.util.Arrays.copyOfRange(embeds, from * config.hiddenSize(), to * config.hiddenSize());
  }

  private static Modality[] modalities(int from, int to) {
    return java.util.Arrays.copyOfRange(prompt.modalities(), from, to);
  }

  /** A text sequence of 6 tokens, embedded. */
  private static float[] textEmbeds() {
    int[] ids = {1, 450, 3000, 29871, 13, 22};
    float[] embeds = new float[ids.length * config.hiddenSize()];
    for (int i = 0; i < ids.length; i++) {
      embedTokens.lookup(ids[i], embeds, i * config.hiddenSize());
    }
    return embeds;
  }

  private static Modality[] text(int n) {
    Modality[] m = new Modality[n];
    java.util.Arrays.fill(m, Modality.TEXT);
    return m;
  }

  private static float[] concat(float[] a, float[] b) {
    float[] out = java.util.Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }

  private static Modality[] concat(Modality[] a, Modality[] b) {
    Modality[] out = java.util.Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }

  @Test
  void aBatchedStepOfAPrefillChunkAndADecodeRowEqualsEachSequenceRunAlone() {
    int[] tableA = BLOCK_TABLE;
    int[] tableB = {2, 20};
    float[] textB = textEmbeds();
    // step 1: A's rows 0..7 (all logits) with B's prompt rows 0..4 (last logits); step 2: A's rows 8..15 with B's row 5
    List<SliceStep> batched = List.of(
        new SliceStep(List.of(new SliceStep.Sequence(tableA, 0, 8, LogitRows.ALL),
            new SliceStep.Sequence(tableB, 0, 5, LogitRows.LAST)),
            concat(rows(prompt.inputsEmbeds(), 0, 8), java.util.Arrays.copyOfRange(textB, 0, 5 * 64)),
            concat(modalities(0, 8), text(5))),
        new SliceStep(List.of(new SliceStep.Sequence(tableA, 8, 8, LogitRows.ALL),
            new SliceStep.Sequence(tableB, 5, 1, LogitRows.ALL)),
            concat(rows(prompt.inputsEmbeds(), 8, 16), java.util.Arrays.copyOfRange(textB, 5 * 64, 6 * 64)),
            concat(modalities(8, 16), text(1))));
    List<SliceStep> alone = List.of(
        new SliceStep(List.of(new SliceStep.Sequence(tableA, 0, 8, LogitRows.ALL)), rows(prompt.inputsEmbeds(), 0, 8),
            modalities(0, 8)),
        new SliceStep(List.of(new SliceStep.Sequence(tableB, 0, 5, LogitRows.LAST)),
            java.util.Arrays.copyOfRange(textB, 0, 5 * 64), text(5)),
        new SliceStep(List.of(new SliceStep.Sequence(tableA, 8, 8, LogitRows.ALL)),
            rows(prompt.inputsEmbeds(), 8, 16), modalities(8, 16)),
        new SliceStep(List.of(new SliceStep.Sequence(tableB, 5, 1, LogitRows.ALL)),
            java.util.Arrays.copyOfRange(textB, 5 * 64, 6 * 64), text(1)));
    List<float[]> together = runSteps(0, Collective.single(), batched);
    List<float[]> separately = runSteps(0, Collective.single(), alone);
    int vocab = config.vocabSize();
    assertThat(together.get(0)).containsExactly(concat(separately.get(0), separately.get(1)));
    assertThat(together.get(1)).containsExactly(concat(separately.get(2), separately.get(3)));
    assertThat(together.get(1)).hasSize(9 * vocab);
  }

  /** The same single-sequence steps through the CPU's DecoderSlice of that rank, F16 paged cache on the same table. */
  private static List<float[]> runCpuSteps(Collective collective, List<SliceStep> steps) {
    DecoderSlice slice = new DecoderSlice(model, config, collective, new ScalarKernels(), 16);
    PagedKvCache cache = slice.newKvBlockPool(24, BLOCK_SIZE, KvCacheDtype.F16).newSequenceCache();
    for (int block : BLOCK_TABLE) {
      cache.appendBlock(block);
    }
    List<float[]> out = new ArrayList<>();
    for (SliceStep step : steps) {
      int vocab = slice.localVocabSize();
      float[] logits = new float[step.numLogitRows() * vocab];
      slice.forward(step.inputsEmbeds(), 0, step.modalities(), step.numTokens(), cache, LogitRows.ALL, logits, vocab, 0);
      out.add(logits);
    }
    return out;
  }

  /** Each step's logits of both ranks, run on two threads of an in-process group, gathered by vocabulary id. */
  private static List<float[]> twoRanks(java.util.function.BiFunction<Integer, Collective, List<float[]>> rank,
      List<SliceStep> steps) throws Exception {
    InProcessGroup group = new InProcessGroup(2, Duration.ofSeconds(60));
    ExecutorService threads = Executors.newFixedThreadPool(2);
    try {
      Future<List<float[]>> rank0 = threads.submit(() -> rank.apply(0, group.member(0)));
      Future<List<float[]>> rank1 = threads.submit(() -> rank.apply(1, group.member(1)));
      int vocab = config.vocabSize();
      int half = vocab / 2; // 32000 splits evenly: rank 0 ids [0, 16000), rank 1 [16000, 32000)
      List<float[]> gathered = new ArrayList<>();
      for (int s = 0; s < steps.size(); s++) {
        float[] a = rank0.get().get(s);
        float[] b = rank1.get().get(s);
        int numRows = steps.get(s).numLogitRows();
        assertThat(a).hasSize(numRows * half);
        float[] all = new float[numRows * vocab];
        for (int row = 0; row < numRows; row++) {
          System.arraycopy(a, row * half, all, row * vocab, half);
          System.arraycopy(b, row * half, all, row * vocab + half, half);
        }
        gathered.add(all);
      }
      return gathered;
    } finally {
      threads.shutdownNow();
    }
  }

  private static double maxAbsDiff(List<float[]> a, List<float[]> b) {
    double max = 0;
    for (int s = 0; s < a.size(); s++) {
      assertThat(a.get(s)).hasSameSizeAs(b.get(s));
      for (int i = 0; i < a.get(s).length; i++) {
        max = Math.max(max, Math.abs(a.get(s)[i] - b.get(s)[i]));
      }
    }
    return max;
  }

  @Test
  void twoTensorParallelRanksEachOnItsOwnDeviceEqualTheCpuRanksAndOneRank() throws Exception {
    // the prompt in three chunks, then one decode row; each rank's vocabulary slice gathered by its ids
    List<SliceStep> steps = new ArrayList<>();
    for (int first = 0; first < NUM_POSITIONS; first += 8) {
      steps.add(new SliceStep(List.of(new SliceStep.Sequence(BLOCK_TABLE, first, 8, LogitRows.ALL)),
          rows(prompt.inputsEmbeds(), first, first + 8), modalities(first, first + 8)));
    }
    steps.add(new SliceStep(List.of(new SliceStep.Sequence(BLOCK_TABLE, NUM_POSITIONS, 1, LogitRows.ALL)),
        java.util.Arrays.copyOfRange(textEmbeds(), 0, 64), text(1)));
    List<float[]> deviceTp2 = twoRanks((rank, collective) -> runSteps(rank, collective, steps), steps);
    List<float[]> cpuTp2 = twoRanks((rank, collective) -> runCpuSteps(collective, steps), steps);
    List<float[]> deviceTp1 = runSteps(0, Collective.single(), steps);
    double vsCpu = maxAbsDiff(deviceTp2, cpuTp2);
    double vsOneRank = maxAbsDiff(deviceTp2, deviceTp1);
    System.out.printf("TP 2 on the twins: vs the CPU's TP 2 %.3g, vs TP 1 %.3g%n", vsCpu, vsOneRank);
    // both all-reduces where the CPU has them, summed in the same rank order: the CPU's numbers exactly
    assertThat(vsCpu).isZero();
    // TP 1 adds each product's halves in another order: TinyOwl2DecoderTest holds both sizes to the
    // fixture's logits tolerance, 1e-3
    assertThat(vsOneRank).isLessThan(1e-3);
  }

  @Test
  void aStepPastItsBlockTableOrOutsideThePoolIsRefusedBeforeAnythingRuns() {
    try (CpuTwinDevice device = new CpuTwinDevice()) {
      DeviceDecoderSlice slice = new DeviceDecoderSlice(device, model, config, Collective.single(), CAPACITY);
      DeviceKvPool pool = slice.newKvPool(NUM_BLOCKS, BLOCK_SIZE);
      float[] logits = new float[CAPACITY * slice.localVocabSize()];
      long launches = device.launches();
      SliceStep past = new SliceStep(List.of(new SliceStep.Sequence(new int[] {3}, 4, 2, LogitRows.ALL)),
          rows(prompt.inputsEmbeds(), 0, 2), modalities(0, 2));
      assertThatThrownBy(() -> slice.forward(past, pool, logits))
          .hasMessage("a block table of 1 blocks of 5 positions does not reach position 5");
      SliceStep outside = new SliceStep(List.of(new SliceStep.Sequence(new int[] {16}, 0, 1, LogitRows.ALL)),
          rows(prompt.inputsEmbeds(), 0, 1), modalities(0, 1));
      assertThatThrownBy(() -> slice.forward(outside, pool, logits))
          .hasMessage("block id 16 is outside the pool's 16 blocks");
      assertThat(device.launches()).isEqualTo(launches);
    }
  }

  /** Prompt and greedy steps with the fixture's weights converted to F16 at load, on both sides, in steps of {@code capacity} rows. */
  private static double f16WeightsDifference(int capacity) {
    try (Checkpoint f16 = SafetensorsCheckpoint.openFile(Fixtures.tinyOwl2().resolve("model.safetensors"))
            .withWeightFormat(WeightFormat.F16);
        CpuTwinDevice device = new CpuTwinDevice()) {
      DecoderSlice cpuSlice = new DecoderSlice(f16, config, Collective.single(), new ScalarKernels(), capacity);
      GreedyRun cpu = GreedyRun.onCpu(cpuSlice, cpuSlice.newKvBlockPool(NUM_BLOCKS, BLOCK_SIZE, KvCacheDtype.F16),
          embedTokens, prompt, NUM_NEW);
      DeviceDecoderSlice slice = new DeviceDecoderSlice(device, f16, config, Collective.single(), capacity);
      GreedyRun onDevice = GreedyRun.onDevice(slice, slice.newKvPool(NUM_BLOCKS, BLOCK_SIZE), embedTokens, prompt,
          NUM_NEW);
      assertThat(onDevice.generated()).containsExactly(cpu.generated());
      return onDevice.maxAbsDifference(cpu);
    }
  }

  @Test
  void f16WeightsTakeTheGemvKernelsAndEqualTheCpuSlice() {
    // chunks below GEMM64_MIN_TOKENS rows: gemv8_f16; decode rows: gemv_f16; both sum float32 products of the same values
    double error = f16WeightsDifference(DeviceMatrix.GEMM64_MIN_TOKENS - 1);
    System.out.printf("F16 weights, gemv8/gemv: max |logits diff| %.3g%n", error);
    assertThat(error).isZero();
  }

  @Test
  void f16WeightsInAStepOf32RowsTakeTheGemmWhichRoundsXTo16Bits() {
    // the prompt (24 rows) and 8 text rows of another sequence in one step: 32 rows take gemm64_f16,
    // whose x enters as F16 where the CPU keeps it in float32
    int[] ids = {1, 450, 3000, 29871, 13, 22, 887, 1576};
    float[] textB = new float[ids.length * config.hiddenSize()];
    for (int i = 0; i < ids.length; i++) {
      embedTokens.lookup(ids[i], textB, i * config.hiddenSize());
    }
    int[] tableB = {2, 20};
    try (Checkpoint f16 = SafetensorsCheckpoint.openFile(Fixtures.tinyOwl2().resolve("model.safetensors"))
            .withWeightFormat(WeightFormat.F16);
        CpuTwinDevice device = new CpuTwinDevice()) {
      assertThat(NUM_POSITIONS + ids.length).isBetween(DeviceMatrix.GEMM64_MIN_TOKENS, DeviceMatrix.GEMM_MIN_TOKENS - 1);
      DeviceDecoderSlice slice = new DeviceDecoderSlice(device, f16, config, Collective.single(), 32);
      float[] onDevice = new float[32 * config.vocabSize()];
      slice.forward(new SliceStep(List.of(new SliceStep.Sequence(BLOCK_TABLE, 0, NUM_POSITIONS, LogitRows.ALL),
          new SliceStep.Sequence(tableB, 0, ids.length, LogitRows.ALL)), concat(prompt.inputsEmbeds(), textB),
          concat(prompt.modalities(), text(ids.length))), slice.newKvPool(24, BLOCK_SIZE), onDevice);
      DecoderSlice cpuSlice = new DecoderSlice(f16, config, Collective.single(), new ScalarKernels(), 32);
      var pool = cpuSlice.newKvBlockPool(24, BLOCK_SIZE, KvCacheDtype.F16);
      float[] cpu = new float[32 * config.vocabSize()];
      int vocab = config.vocabSize();
      int[][] tables = {BLOCK_TABLE, tableB};
      float[][] inputs = {prompt.inputsEmbeds(), textB};
      Modality[][] modalities = {prompt.modalities(), text(ids.length)};
      for (int s = 0, row = 0; s < 2; s++) {
        PagedKvCache cache = pool.newSequenceCache();
        for (int block : tables[s]) {
          cache.appendBlock(block);
        }
        int n = modalities[s].length;
        cpuSlice.forward(inputs[s], 0, modalities[s], n, cache, LogitRows.ALL, cpu, vocab, row * vocab);
        row += n;
      }
      double error = 0;
      for (int i = 0; i < cpu.length; i++) {
        error = Math.max(error, Math.abs(onDevice[i] - cpu[i]));
      }
      System.out.printf("F16 weights, gemm on 32 rows: max |logits diff| %.3g%n", error);
      assertThat(error).isGreaterThan(0).isLessThan(F16_GEMM_LOGITS_BOUND);
    }
  }

  @Test
  void decodeStepsReplayedFromACapturedGraphEqualEagerSteps() {
    GreedyRun eager;
    long eagerLaunches;
    try (CpuTwinDevice device = new CpuTwinDevice()) {
      DeviceDecoderSlice slice = new DeviceDecoderSlice(device, model, config, Collective.single(), CAPACITY);
      eager = GreedyRun.onDevice(slice, slice.newKvPool(NUM_BLOCKS, BLOCK_SIZE), embedTokens, prompt, NUM_NEW);
      eagerLaunches = device.launches();
      assertThat(device.graphReplays()).isZero();
    }
    try (CpuTwinDevice device = new CpuTwinDevice()) {
      DeviceDecoderSlice slice = new DeviceDecoderSlice(device, model, config, Collective.single(), CAPACITY);
      slice.captureDecodeSteps();
      GreedyRun replayed = GreedyRun.onDevice(slice, slice.newKvPool(NUM_BLOCKS, BLOCK_SIZE), embedTokens, prompt,
          NUM_NEW);
      assertThat(replayed.generated()).containsExactly(eager.generated());
      assertThat(replayed.maxAbsDifference(eager)).isZero();
      // the prompt's chunks ran eagerly; each decode step after the first greedy pick is one replay
      // of a graph captured once, running the same kernels as the eager step did
      assertThat(device.graphReplays()).isEqualTo(NUM_NEW - 1);
      assertThat(device.launches()).isEqualTo(eagerLaunches);
    }
  }
}
