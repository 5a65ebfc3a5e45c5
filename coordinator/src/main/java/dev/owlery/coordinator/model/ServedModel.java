package dev.owlery.coordinator.model;

import dev.owlery.engine.config.GenerationConfig;
import dev.owlery.engine.config.LlamaConfig;
import dev.owlery.engine.config.ModelConfig;
import dev.owlery.engine.decoder.TensorParallelRank;
import dev.owlery.engine.kv.KvBlockPool;
import dev.owlery.engine.kv.KvCacheDtype;
import dev.owlery.engine.model.OwlModel;
import dev.owlery.engine.tokenizer.LlamaTokenizer;
import dev.owlery.engine.tokenizer.SentencePieceTokenizer;
import dev.owlery.proto.v1.Model;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The model a coordinator serves: its name, config.json and tokenizer.model (read once; the
 * weights are never opened here). Immutable and shared by every request.
 *
 * @param name what requests and ListModels call it
 * @param config the checkpoint's config
 * @param sentencePiece the SentencePiece model, for pieces and detokenization
 * @param tokenizer the prompt tokenizer ({@code tokenizer_image_token})
 * @param generationConfig sampling defaults for requests that leave them unset
 */
public record ServedModel(String name, ModelConfig config, SentencePieceTokenizer sentencePiece,
    LlamaTokenizer tokenizer, GenerationConfig generationConfig) {

  public ServedModel {
    if (name == null || name.isBlank()) {
      throw new IllegalArgumentException("model name must not be blank. Given: '" + name + "'");
    }
    if (sentencePiece.vocabSize() != config.text().vocabSize()) {
      throw new IllegalArgumentException("model %s: tokenizer.model has %d pieces but config.json says vocab_size %d"
          .formatted(name, sentencePiece.vocabSize(), config.text().vocabSize()));
    }
  }

  /**
   * Reads {@code directory}'s config.json, generation_config.json and tokenizer.model.
   *
   * @param name the served name; null or blank takes the folder's name
   */
  public static ServedModel load(Path directory, String name) {
    ModelConfig config = ModelConfig.load(directory);
    Path tokenizerFile = directory.resolve("tokenizer.model");
    if (!Files.isRegularFile(tokenizerFile)) {
      throw new IllegalArgumentException("%s: the model directory has no tokenizer.model".formatted(directory));
    }
    SentencePieceTokenizer sentencePiece = SentencePieceTokenizer.load(tokenizerFile);
    String servedName = name == null || name.isBlank() ? OwlModel.defaultName(directory)
        : name;
    return new ServedModel(servedName, config, sentencePiece, new LlamaTokenizer(sentencePiece),
        GenerationConfig.load(directory));
  }

  public LlamaConfig text() {
    return config.text();
  }

  public int vocabSize() {
    return config.text().vocabSize();
  }

  /** Longest prompt plus completion, in decoder positions. */
  public int maxPositions() {
    return config.text().maxPositions();
  }

  /**
   * Bytes one position's keys and values take on one of {@code worldSize} shard workers (stored as
   * {@code dtype}, every layer, that shard's kv heads: {@code numKvHeads / worldSize}, or one replicated kv head
   * when there are fewer kv heads than shards).
   *
   * @throws IllegalArgumentException when the model's heads cannot be split over {@code worldSize}
   */
  public long kvBytesPerToken(int worldSize, KvCacheDtype dtype) {
    LlamaConfig text = config.text();
    int numLocalKvHeads = new TensorParallelRank(0, worldSize).kvHeads(text.numHeads(), text.numKvHeads()).size();
    return KvBlockPool.bytes(text.numLayers(), numLocalKvHeads, text.headDim(), 1, 1, dtype);
  }

  /**
   * Floating-point operations of one decoder row (2 per multiply-add of every projection and the
   * lm_head; attention over the cache not counted), all ranks together.
   */
  public double flopsPerRow() {
    LlamaConfig text = config.text();
    double perLayer = (double) text.hiddenSize() * (2L * text.qSize() + 2L * text.kvSize())
        + 3.0 * text.hiddenSize() * text.intermediateSize();
    return 2 * (text.numLayers() * perLayer + (double) text.vocabSize() * text.hiddenSize());
  }

  public int eosTokenId() {
    return config.text().eosTokenId();
  }

  public boolean supportsImages() {
    return config.multimodal();
  }

  /** Decoder rows one image becomes (num_learnable_queries + 1, spec §5); 0 without vision. */
  public int numImageTokens() {
    return config.multimodal() ? config.abstractor().numQueries() + 1 : 0;
  }

  /** The public API's description, with the number of READY shard groups. */
  public Model toProto(int numReadyGroups) {
    return Model.newBuilder()
        .setName(name)
        .setModelType(config.modelType())
        .setVocabSize(vocabSize())
        .setMaxPositions(maxPositions())
        .setSupportsImages(supportsImages())
        .setNumImageTokens(numImageTokens())
        .setNumReadyGroups(numReadyGroups)
        .build();
  }
}
