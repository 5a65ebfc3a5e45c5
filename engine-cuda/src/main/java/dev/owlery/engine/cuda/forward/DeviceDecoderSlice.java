package dev.owlery.engine.cuda.forward;

import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.config.LlamaConfig;
import dev.owlery.engine.cuda.ptx.PtxKernels;
import dev.owlery.engine.cuda.runtime.Device;
import dev.owlery.engine.cuda.runtime.DeviceGraph;
import dev.owlery.engine.cuda.runtime.DevicePointer;
import dev.owlery.engine.decoder.IndexRange;
import dev.owlery.engine.decoder.Modality;
import dev.owlery.engine.decoder.RotaryEmbedding;
import dev.owlery.engine.decoder.TensorParallelRank;
import dev.owlery.engine.decoder.VocabSlice;
import dev.owlery.engine.parallel.Collective;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Rank r of N of the decoder on a {@link Device} (DESIGN.md §2, shard worker; the device twin of the
 * CPU's {@code DecoderSlice}): the same heads, kv heads, intermediate features and vocabulary rows
 * as the CPU slice of that rank, held in device memory in the checkpoint's served dtype, with a
 * paged F16 KV cache ({@link DeviceKvPool}) and preallocated step buffers. {@link #forward} runs a
 * step of decode and prefill rows as kernel launches; the host sees the step's input rows going in,
 * the two all-reduces per layer (through the {@link Collective}) and the wanted logits coming out,
 * nothing else.
 *
 * <p>The slice's buffers live as long as its device: closing the device frees them. One thread
 * uses a slice (and its device) at a time.
 */
public final class DeviceDecoderSlice {

  private final Device device;
  private final LlamaConfig config;
  private final TensorParallelRank tp;
  private final List<DeviceDecoderLayer> layers;
  private final DevicePointer norm; // float32 [1, hiddenSize]
  private final DeviceMatrix lmHead; // this rank's vocabulary rows
  private final int vocabStart;
  private final DeviceActivations activations;
  private final int capacity;
  private final int[] rowSeq;
  private final int[] rowPos;
  private final int[] modality;
  private DevicePointer blockTables; // int32, grown to the largest step's [numSeqs, maxBlocksPerSeq]
  private int blockTablesCapacity;
  private Map<GraphShape, DeviceGraph> decodeGraphs; // null: every step launched eagerly

  /** Loads this rank's slice onto {@code device}; a step holds at most {@code stepCapacity} rows. */
  public DeviceDecoderSlice(Device device, Checkpoint checkpoint, LlamaConfig config, Collective collective,
      int stepCapacity) {
    if (stepCapacity < 1) {
      throw new IllegalArgumentException("stepCapacity must be >= 1, got " + stepCapacity);
    }
    this.device = device;
    this.config = config;
    this.tp = new TensorParallelRank(collective.rank(), collective.size());
    this.capacity = stepCapacity;
    // every split checked before a weight is copied, as DecoderSlice does
    int numLocalHeads = tp.heads(config.numHeads()).size();
    int numLocalKvHeads = tp.kvHeads(config.numHeads(), config.numKvHeads()).size();
    int localIntermediate = tp.evenShare("intermediate_size", config.intermediateSize()).size();
    VocabSlice vocab = tp.vocab(config.vocabSize());
    HostAllReduce allReduce = new HostAllReduce(device, collective, stepCapacity * config.hiddenSize());
    RotaryEmbedding rotaryEmb = new RotaryEmbedding(config.headDim(), config.ropeTheta(), config.maxPositions());
    DeviceRopeTables ropeTables = DeviceRopeTables.upload(device, RopeTables.of(rotaryEmb, config.headDim()),
        config.maxPositions());
    List<DeviceDecoderLayer> loaded = new ArrayList<>(config.numLayers());
    for (int i = 0; i < config.numLayers(); i++) {
      loaded.add(new DeviceDecoderLayer(device, allReduce, ropeTables, checkpoint, i, config, tp));
    }
    this.layers = List.copyOf(loaded);
    this.norm = DeviceWeights.norms(device, checkpoint, "model.norm", 1, config.hiddenSize());
    String lmHeadName = !checkpoint.contains("lm_head.weight") && config.tieWordEmbeddings()
        ? "model.embed_tokens.weight" : "lm_head.weight"; // as ParallelLmHead
    this.lmHead = DeviceWeights.rows(device, checkpoint, lmHeadName, config.vocabSize(), config.hiddenSize(),
        new IndexRange(vocab.start(), vocab.end()));
    this.vocabStart = vocab.start();
    this.activations = new DeviceActivations(device, stepCapacity, config.hiddenSize(),
        numLocalHeads * config.headDim(), numLocalKvHeads * config.headDim(), localIntermediate, lmHead.rows());
    this.rowSeq = new int[stepCapacity];
    this.rowPos = new int[stepCapacity];
    this.modality = new int[stepCapacity];
  }

  public TensorParallelRank rank() {
    return tp;
  }

  public LlamaConfig config() {
    return config;
  }

  /** First vocabulary id of this rank's logits. */
  public int vocabStart() {
    return vocabStart;
  }

  /** Vocabulary ids this rank writes logits for. */
  public int localVocabSize() {
    return lmHead.rows();
  }

  /** Rows one step holds at most. */
  public int stepCapacity() {
    return capacity;
  }

  /** A paged F16 KV pool on this slice's device for its kv heads, every layer: {@code numBlocks} blocks of {@code blockSize}. */
  public DeviceKvPool newKvPool(int numBlocks, int blockSize) {
    int numLocalKvHeads = tp.kvHeads(config.numHeads(), config.numKvHeads()).size();
    return new DeviceKvPool(device, config.numLayers(), numLocalKvHeads, config.headDim(), numBlocks, blockSize);
  }

  /**
   * Runs {@code step} through every layer, its keys and values written into {@code pool} at its
   * block tables' slots, and writes this rank's logits of the wanted rows into {@code logits}: row i
   * (in batch order) at {@code i * localVocabSize()}.
   *
   * @throws IllegalArgumentException when the step does not fit the slice, a position is past
   *     {@code max_position_embeddings} or its block table, or a block id is outside the pool;
   *     nothing has run then
   */
  public void forward(SliceStep step, DeviceKvPool pool, float[] logits) {
    int n = step.numTokens();
    int hidden = config.hiddenSize();
    int vocab = lmHead.rows();
    check(step, pool, logits);
    StepRows rows = describe(step, pool);
    device.copyToDevice(activations.residual, step.inputsEmbeds(), 0, n * hidden);
    boolean decode = step.sequences().stream().allMatch(s -> s.numRows() == 1);
    if (decodeGraphs != null && decode && tp.size() == 1) {
      // the launches depend only on the pool, the rows' modalities (MAM's k/v runs) and the tables' width
      // the step's rows only: a caller's modality buffer may be longer (and hold nulls past them)
      List<Modality> rowModalities = List.copyOf(Arrays.asList(step.modalities()).subList(0, n));
      decodeGraphs.computeIfAbsent(new GraphShape(pool, rowModalities, rows.maxBlocksPerSeq()),
          shape -> device.capture(() -> launchStep(step, rows, pool))).replay();
    } else {
      launchStep(step, rows, pool);
    }
    device.copyToHost(logits, 0, activations.logits, step.numLogitRows() * vocab);
  }

  /**
   * From now on, decode steps (every sequence one row) at tensor-parallel size 1 run from a graph
   * captured the first time their shape (rows, block-table width, pool) is seen, one replay per step
   * instead of a launch per kernel (CUDA graphs on the GPU). At TP above 1 the all-reduces leave the
   * device inside every layer, so steps stay eager there.
   */
  public void captureDecodeSteps() {
    if (decodeGraphs == null) {
      decodeGraphs = new HashMap<>();
    }
  }

  /** The launches of one step whose inputs and row descriptions are on the device: every layer, the final norm, lm_head. */
  private void launchStep(SliceStep step, StepRows rows, DeviceKvPool pool) {
    int n = rows.numTokens();
    int hidden = config.hiddenSize();
    int vocab = lmHead.rows();
    for (DeviceDecoderLayer layer : layers) {
      layer.forward(activations, rows, pool);
    }
    // final norm, then lm_head on the wanted rows: one product per run of consecutive rows
    device.launch(PtxKernels.RMS_NORM, n, 1, activations.normed, activations.residual, norm, activations.modality,
        hidden, 1, config.rmsNormEps());
    int row = 0;
    int runStart = -1; // first input row of the current run of wanted rows
    int runLength = 0;
    int outRow = 0;
    for (SliceStep.Sequence s : step.sequences()) {
      int first = switch (s.logitRows()) {
        case ALL -> row;
        case LAST -> row + s.numRows() - 1;
      };
      if (runLength > 0 && first != runStart + runLength) {
        lmHead.multiply(device, activations.normed.plusWords((long) runStart * hidden),
            activations.logits.plusWords((long) (outRow - runLength) * vocab), runLength);
        runLength = 0;
      }
      runStart = runLength == 0 ? first : runStart;
      runLength += s.numLogitRows();
      outRow += s.numLogitRows();
      row += s.numRows();
    }
    lmHead.multiply(device, activations.normed.plusWords((long) runStart * hidden),
        activations.logits.plusWords((long) (outRow - runLength) * vocab), runLength);
  }

  /** What a captured decode step's launches depend on. */
  private record GraphShape(DeviceKvPool pool, List<Modality> modalities, int maxBlocksPerSeq) {}

  private void check(SliceStep step, DeviceKvPool pool, float[] logits) {
    int n = step.numTokens();
    if (n > capacity) {
      throw new IllegalArgumentException("a step must have between 1 and the slice's step capacity (%d) rows. Given: %d"
          .formatted(capacity, n));
    }
    if (step.inputsEmbeds().length < n * config.hiddenSize()) {
      throw new IllegalArgumentException("a step of %d rows needs %d input floats (hidden_size %d each), given %d"
          .formatted(n, n * config.hiddenSize(), config.hiddenSize(), step.inputsEmbeds().length));
    }
    if (logits.length < step.numLogitRows() * lmHead.rows()) {
      throw new IllegalArgumentException("the step returns %d logit rows of %d, the output holds %d floats"
          .formatted(step.numLogitRows(), lmHead.rows(), logits.length));
    }
    for (SliceStep.Sequence s : step.sequences()) {
      int last = s.firstPosition() + s.numRows() - 1;
      if (last >= config.maxPositions()) {
        throw new IllegalArgumentException("position %d is outside max_position_embeddings %d"
            .formatted(last, config.maxPositions()));
      }
      if ((long) s.blockTable().length * pool.blockSize() <= last) {
        throw new IllegalArgumentException("a block table of %d blocks of %d positions does not reach position %d"
            .formatted(s.blockTable().length, pool.blockSize(), last));
      }
      for (int block : s.blockTable()) {
        if (block < 0 || block >= pool.numBlocks()) {
          throw new IllegalArgumentException("block id %d is outside the pool's %d blocks"
              .formatted(block, pool.numBlocks()));
        }
      }
    }
  }

  /** Uploads the step's row descriptions and block tables (checked by {@link #check}). */
  private StepRows describe(SliceStep step, DeviceKvPool pool) {
    int maxBlocksPerSeq = 1;
    for (SliceStep.Sequence s : step.sequences()) {
      maxBlocksPerSeq = Math.max(maxBlocksPerSeq, s.blockTable().length);
    }
    int numSeqs = step.sequences().size();
    int[] tables = new int[numSeqs * maxBlocksPerSeq];
    Arrays.fill(tables, -1);
    int t = 0;
    for (int i = 0; i < numSeqs; i++) {
      SliceStep.Sequence s = step.sequences().get(i);
      System.arraycopy(s.blockTable(), 0, tables, i * maxBlocksPerSeq, s.blockTable().length);
      for (int k = 0; k < s.numRows(); k++, t++) {
        rowSeq[t] = i;
        rowPos[t] = s.firstPosition() + k;
        modality[t] = step.modalities()[t].index();
      }
    }
    if (tables.length > blockTablesCapacity) {
      if (blockTables != null) {
        device.free(blockTables);
      }
      if (decodeGraphs != null) { // their launches point at the freed tables
        decodeGraphs.values().forEach(DeviceGraph::close);
        decodeGraphs.clear();
      }
      blockTablesCapacity = Math.max(tables.length, 2 * blockTablesCapacity);
      blockTables = device.allocate(4L * blockTablesCapacity);
    }
    device.copyToDevice(blockTables, tables, 0, tables.length);
    device.copyToDevice(activations.rowSeq, rowSeq, 0, t);
    device.copyToDevice(activations.rowPos, rowPos, 0, t);
    device.copyToDevice(activations.modality, modality, 0, t);
    return new StepRows(t, step.modalities(), blockTables, maxBlocksPerSeq);
  }
}
