package dev.owlery.shard.worker;

import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.checkpoint.Checkpoints;
import dev.owlery.engine.config.LlamaConfig;
import dev.owlery.engine.config.ModelConfig;
import dev.owlery.engine.cuda.forward.DeviceDecoderSlice;
import dev.owlery.engine.cuda.plan.DeviceMemoryPlan;
import dev.owlery.engine.cuda.plan.SliceFootprint;
import dev.owlery.engine.cuda.runtime.Device;
import dev.owlery.engine.decoder.DecoderSlice;
import dev.owlery.engine.decoder.Embedding;
import dev.owlery.engine.decoder.TensorParallelRank;
import dev.owlery.engine.kernel.Kernels;
import dev.owlery.engine.kv.KvBlockPool;
import dev.owlery.engine.kv.KvCacheDtype;
import dev.owlery.engine.tensor.DType;
import dev.owlery.engine.tensor.Tensor;
import dev.owlery.engine.tensor.WeightFormat;
import dev.owlery.proto.internal.v1.LoadSliceRequest;
import dev.owlery.proto.internal.v1.LoadSliceResponse;
import dev.owlery.shard.collective.GrpcCollective;
import dev.owlery.shard.collective.PeerGroup;
import dev.owlery.shard.collective.ShardPeerService;
import io.grpc.Status;
import io.micrometer.core.instrument.MeterRegistry;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Carries out LoadSlice: checks the request, maps this rank's slice of the checkpoint (onto the
 * worker's device when it has one), and forms the group's collective (returns once every peer
 * stream has shaken hands).
 */
final class SliceLoader {

  private final ShardWorkerConfig config;
  private final Kernels kernels;
  private final MeterRegistry meters;
  private final ShardPeerService peers;

  SliceLoader(ShardWorkerConfig config, Kernels kernels, MeterRegistry meters, ShardPeerService peers) {
    this.config = config;
    this.kernels = kernels;
    this.meters = meters;
    this.peers = peers;
  }

  /**
   * Loads the slice {@code request} names.
   *
   * @throws IllegalArgumentException for a bad request or checkpoint (INVALID_ARGUMENT)
   * @throws io.grpc.StatusRuntimeException PERMISSION_DENIED for a folder outside the allow-list
   * @throws dev.owlery.shard.collective.PeerLostException when the group cannot be formed (UNAVAILABLE)
   */
  LoadedSlice load(LoadSliceRequest request) {
    long start = System.nanoTime();
    PeerGroup group = new PeerGroup(request.getGroupId(), request.getRank(), request.getWorldSize(),
        request.getPeerAddressesList());
    Path dir = modelDir(request.getModelDir());
    requireAtLeast("max_num_tokens", request.getMaxNumTokens(), 1);
    requireAtLeast("max_num_sequences", request.getMaxNumSequences(), 1);
    requireAtLeast("num_kv_blocks", request.getNumKvBlocks(), 1);
    requireAtLeast("block_size_tokens", request.getBlockSizeTokens(), 1);
    KvCacheDtype kvCacheDtype = kvCacheDtype(request);
    LlamaConfig text = ModelConfig.load(dir).text();
    TensorParallelRank tp = new TensorParallelRank(group.rank(), group.worldSize());
    // checked before mapping anything: "num_attention_heads (32) must be divisible by the tensor-parallel size (3)"
    int numLocalHeads = tp.heads(text.numHeads()).size();
    int numLocalKvHeads = tp.kvHeads(text.numHeads(), text.numKvHeads()).size();
    tp.vocab(text.vocabSize());
    tp.evenShare("intermediate_size", text.intermediateSize());

    Checkpoint checkpoint = Checkpoints.open(dir).withWeightFormat(config.weights());
    GrpcCollective collective = null;
    SliceForward<?> forward = null;
    try {
      collective = new GrpcCollective(group, text.numLayers(), text.hiddenSize(), request.getMaxNumTokens(),
          config.collective(), meters);
      // a step's rows, all sequences together, run as one pass through the layers
      forward = config.device().isCpu()
          ? cpuForward(checkpoint, text, collective, request, numLocalKvHeads, kvCacheDtype)
          : deviceForward(checkpoint, text, collective, request, tp, kvCacheDtype);
      collective.connect(peers);
      LoadSliceResponse response = LoadSliceResponse.newBuilder()
          .setNumLocalHeads(numLocalHeads)
          .setNumLocalKvHeads(numLocalKvHeads)
          .setVocabStart(forward.vocabStart())
          .setVocabEnd(forward.vocabStart() + forward.localVocabSize())
          .setWeightBytes(weightBytes(checkpoint, text, tp, config.weights()))
          .setKvCacheBytes(forward.kvCacheBytes())
          .setLoadDurationNs(System.nanoTime() - start)
          .build();
      StepPlan.Limits limits = new StepPlan.Limits(text.vocabSize(), text.hiddenSize(), text.maxPositions(),
          request.getMaxNumTokens(), request.getMaxNumSequences(), request.getNumKvBlocks(),
          request.getBlockSizeTokens());
      return new LoadedSlice<>(request, response, checkpoint, text, forward, collective, limits);
    } catch (RuntimeException | Error e) {
      if (forward != null) {
        forward.close();
      }
      if (collective != null) {
        collective.close();
      }
      checkpoint.close();
      throw e;
    }
  }

  private CpuSliceForward cpuForward(Checkpoint checkpoint, LlamaConfig text, GrpcCollective collective,
      LoadSliceRequest request, int numLocalKvHeads, KvCacheDtype kvCacheDtype) {
    DecoderSlice slice = new DecoderSlice(checkpoint, text, collective, kernels, request.getMaxNumTokens());
    KvBlockPool pool = allocatePool(slice, request, text, numLocalKvHeads, kvCacheDtype);
    return new CpuSliceForward(slice, pool, request.getMaxNumSequences());
  }

  /**
   * The slice on the worker's device, once the device's memory plan allows the pool LoadSlice asks
   * for: weights in their device dtype, the workspace of max_num_tokens rows and num_kv_blocks F16
   * blocks within {@code --gpu-memory-utilization} of the device (DeviceMemoryPlan). Decode steps at
   * tensor-parallel size 1 run from captured graphs.
   *
   * @throws io.grpc.StatusRuntimeException RESOURCE_EXHAUSTED when the plan allows fewer blocks
   * @throws IllegalArgumentException for an F32 KV cache, which the device kernels do not store
   */
  private DeviceSliceForward deviceForward(Checkpoint checkpoint, LlamaConfig text, GrpcCollective collective,
      LoadSliceRequest request, TensorParallelRank tp, KvCacheDtype kvCacheDtype) {
    ShardDevice target = config.device();
    if (kvCacheDtype != KvCacheDtype.F16) {
      throw new IllegalArgumentException(("kv_cache_dtype must be KV_CACHE_DTYPE_F16 on %s (the device kernels store "
          + "the KV cache in F16). Given: %s").formatted(target.spec().flagValue(), request.getKvCacheDtype()));
    }
    SliceFootprint footprint = SliceFootprint.of(text, tp, deviceWeightDtype(checkpoint, config.weights()),
        KvCacheDtype.F16, request.getMaxNumTokens());
    DeviceMemoryPlan plan = DeviceMemoryPlan.of(target.memory(), target.gpuMemoryUtilization(), footprint,
        request.getBlockSizeTokens());
    if (request.getNumKvBlocks() > plan.numKvBlocks()) {
      throw Status.RESOURCE_EXHAUSTED.withDescription(("num_kv_blocks %d is more than this shard's device plan allows: "
          + "%s").formatted(request.getNumKvBlocks(), plan.describe())).asRuntimeException();
    }
    Device device = target.open();
    try {
      DeviceDecoderSlice slice = new DeviceDecoderSlice(device, checkpoint, text, collective, request.getMaxNumTokens());
      if (tp.size() == 1) {
        slice.captureDecodeSteps();
      }
      return new DeviceSliceForward(device, slice, slice.newKvPool(request.getNumKvBlocks(),
          request.getBlockSizeTokens()), Embedding.load(checkpoint, text),
          (long) request.getNumKvBlocks() * request.getBlockSizeTokens() * footprint.kvBytesPerPosition());
    } catch (RuntimeException | Error e) {
      device.close();
      throw e;
    }
  }

  /** The dtype this worker's weights take on a device: its {@code --weights} over the checkpoint's q_proj dtype. */
  static DType deviceWeightDtype(Checkpoint checkpoint, WeightFormat format) {
    return SliceFootprint.deviceDtype(format, checkpoint.tensor("model.layers.0.self_attn.q_proj.weight").dtype());
  }

  private Path modelDir(String modelDir) {
    if (modelDir.isBlank()) {
      throw new IllegalArgumentException("model_dir must name the checkpoint folder. Given: ''");
    }
    Path dir = Path.of(modelDir);
    if (!config.allows(dir)) {
      throw Status.PERMISSION_DENIED.withDescription("model_dir %s is outside the folders this shard may load: %s"
          .formatted(modelDir, config.allowedModelDirs())).asRuntimeException();
    }
    if (!Files.isDirectory(dir)) {
      throw new IllegalArgumentException("model_dir %s is not a folder on this shard".formatted(modelDir));
    }
    return dir;
  }

  private static KvCacheDtype kvCacheDtype(LoadSliceRequest request) {
    return switch (request.getKvCacheDtype()) {
      case KV_CACHE_DTYPE_F16 -> KvCacheDtype.F16;
      case KV_CACHE_DTYPE_F32 -> KvCacheDtype.F32;
      case KV_CACHE_DTYPE_UNSPECIFIED, UNRECOGNIZED -> throw new IllegalArgumentException(
          "kv_cache_dtype must be KV_CACHE_DTYPE_F16 or KV_CACHE_DTYPE_F32. Given: " + request.getKvCacheDtypeValue());
    };
  }

  /**
   * The KV block pool LoadSlice asks for, allocated once.
   *
   * @throws io.grpc.StatusRuntimeException RESOURCE_EXHAUSTED naming the bytes asked when the heap
   *     cannot hold it
   */
  private static KvBlockPool allocatePool(DecoderSlice slice, LoadSliceRequest request, LlamaConfig text,
      int numLocalKvHeads, KvCacheDtype dtype) {
    long bytes = KvBlockPool.bytes(text.numLayers(), numLocalKvHeads, text.headDim(), request.getNumKvBlocks(),
        request.getBlockSizeTokens(), dtype);
    try {
      return slice.newKvBlockPool(request.getNumKvBlocks(), request.getBlockSizeTokens(), dtype);
    } catch (OutOfMemoryError e) {
      // one large allocation that failed whole: nothing else is left half-built, so the shard can go on
      throw Status.RESOURCE_EXHAUSTED.withDescription(("cannot allocate the KV cache: num_kv_blocks %d x block_size_tokens "
          + "%d positions need %d bytes on this rank; the heap's limit is %d bytes")
          .formatted(request.getNumKvBlocks(), request.getBlockSizeTokens(), bytes, Runtime.getRuntime().maxMemory()))
          .asRuntimeException();
    }
  }

  /**
   * Bytes of the weights this rank reads: embeddings and norms whole, each projection and the
   * lm_head by the share of its rows or columns this rank holds (k/v by its kv heads, replicated
   * ones included; a tied lm_head reads the embeddings already counted), projections and lm_head
   * in {@code format}.
   */
  static long weightBytes(Checkpoint checkpoint, LlamaConfig text, TensorParallelRank tp, WeightFormat format) {
    long total = 0;
    for (String name : checkpoint.names()) {
      boolean decoder = name.startsWith("model.layers.") || name.equals("model.embed_tokens.weight")
          || name.equals("model.norm.weight") || name.equals("lm_head.weight");
      if (!decoder || name.endsWith("rotary_emb.inv_freq")) {
        continue;
      }
      Tensor tensor = checkpoint.tensor(name);
      boolean projection = name.contains("_proj.") || name.equals("lm_head.weight");
      long bytes = projection ? format.bytesOf(tensor) : tensor.numElements() * tensor.dtype().byteSize();
      if (name.contains(".q_proj.") || name.contains(".o_proj.")) {
        bytes = bytes / text.numHeads() * tp.heads(text.numHeads()).size();
      } else if (name.contains(".k_proj.") || name.contains(".v_proj.")) {
        bytes = bytes / text.numKvHeads() * tp.kvHeads(text.numHeads(), text.numKvHeads()).size();
      } else if (name.contains("_proj.")) {
        bytes = bytes / text.intermediateSize() * tp.evenShare("intermediate_size", text.intermediateSize()).size();
      } else if (name.equals("lm_head.weight")) {
        bytes = bytes / text.vocabSize() * tp.vocab(text.vocabSize()).size();
      }
      total += bytes;
    }
    return total;
  }

  private static void requireAtLeast(String field, int value, int minimum) {
    if (value < minimum) {
      throw new IllegalArgumentException("%s must be >= %d. Given: %d".formatted(field, minimum, value));
    }
  }
}
