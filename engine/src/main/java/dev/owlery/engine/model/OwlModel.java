package dev.owlery.engine.model;

import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.checkpoint.Checkpoints;
import dev.owlery.engine.config.GenerationConfig;
import dev.owlery.engine.config.ModelConfig;
import dev.owlery.engine.decoder.Decoder;
import dev.owlery.engine.kernel.Kernels;
import dev.owlery.engine.tensor.WeightFormat;
import dev.owlery.engine.tokenizer.LlamaTokenizer;
import dev.owlery.engine.tokenizer.SentencePieceTokenizer;
import dev.owlery.engine.vision.VisionTower;
import dev.owlery.engine.vision.preprocess.ImageDecoder;
import dev.owlery.engine.vision.preprocess.ImagePreprocessor;
import dev.owlery.engine.vision.preprocess.PreprocessorConfig;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A model directory loaded for in-process use: config, memory-mapped checkpoint, tokenizer,
 * decoder (as {@code tensorParallelSize} in-process slices), and for mPLUG-Owl2 the image
 * preprocessor and vision tower. Not thread-safe: one generation at a time.
 */
public final class OwlModel implements AutoCloseable {

  private final Path directory;
  private final ModelConfig config;
  private final GenerationConfig generationConfig;
  private final Checkpoint checkpoint;
  private final SentencePieceTokenizer sentencePiece;
  private final LlamaTokenizer tokenizer;
  private final Decoder decoder;
  private final VisionTower visionTower;
  private final ImagePreprocessor preprocessor;
  private final ImageDecoder imageDecoder;
  private final PromptAssembler assembler;

  private OwlModel(Path directory, ModelConfig config, GenerationConfig generationConfig, Checkpoint checkpoint,
      SentencePieceTokenizer sentencePiece, Decoder decoder, VisionTower visionTower, ImagePreprocessor preprocessor) {
    this.directory = directory;
    this.config = config;
    this.generationConfig = generationConfig;
    this.checkpoint = checkpoint;
    this.sentencePiece = sentencePiece;
    this.tokenizer = new LlamaTokenizer(sentencePiece);
    this.decoder = decoder;
    this.visionTower = visionTower;
    this.preprocessor = preprocessor;
    this.imageDecoder = new ImageDecoder();
    this.assembler = new PromptAssembler(decoder, visionTower == null ? 0 : visionTower.numVisualTokens());
  }

  /**
   * Loads {@code directory} (config.json, the checkpoint files, tokenizer.model, and for
   * mPLUG-Owl2 preprocessor_config.json) with the decoder split into {@code tensorParallelSize}
   * slices.
   */
  public static OwlModel load(Path directory, int tensorParallelSize, Kernels kernels) {
    return load(directory, tensorParallelSize, kernels, WeightFormat.STORED);
  }

  /** As {@link #load(Path, int, Kernels)}, with the weight matrices converted to {@code weights} at load. */
  public static OwlModel load(Path directory, int tensorParallelSize, Kernels kernels, WeightFormat weights) {
    ModelConfig config = ModelConfig.load(directory);
    Path tokenizerFile = directory.resolve("tokenizer.model");
    if (!Files.isRegularFile(tokenizerFile)) {
      throw new IllegalArgumentException("%s: the model directory has no tokenizer.model".formatted(directory));
    }
    SentencePieceTokenizer sentencePiece = SentencePieceTokenizer.load(tokenizerFile);
    if (sentencePiece.vocabSize() != config.text().vocabSize()) {
      throw new IllegalArgumentException("%s: tokenizer.model has %d pieces but config.json says vocab_size %d"
          .formatted(directory, sentencePiece.vocabSize(), config.text().vocabSize()));
    }
    Checkpoint checkpoint = Checkpoints.open(directory).withWeightFormat(weights);
    try {
      Decoder decoder = Decoder.load(checkpoint, config, tensorParallelSize, kernels);
      VisionTower visionTower = null;
      ImagePreprocessor preprocessor = null;
      if (config.multimodal()) {
        visionTower = new VisionTower(config, checkpoint, kernels);
        PreprocessorConfig preprocessorConfig = PreprocessorConfig.forModel(directory, config.vision().imageSize());
        preprocessor = new ImagePreprocessor(preprocessorConfig);
      }
      return new OwlModel(directory, config, GenerationConfig.load(directory), checkpoint, sentencePiece, decoder,
          visionTower, preprocessor);
    } catch (RuntimeException e) {
      checkpoint.close();
      throw e;
    }
  }

  public Path directory() {
    return directory;
  }

  /** The model's name in messages: its directory's name, as the coordinator names a model it is given no name for. */
  public String name() {
    return defaultName(directory);
  }

  /** The name of the model in {@code directory} when nobody names it: the directory's own name. */
  public static String defaultName(Path directory) {
    return directory.toAbsolutePath().normalize().getFileName().toString();
  }

  public ModelConfig config() {
    return config;
  }

  public GenerationConfig generationConfig() {
    return generationConfig;
  }

  public SentencePieceTokenizer sentencePiece() {
    return sentencePiece;
  }

  public LlamaTokenizer tokenizer() {
    return tokenizer;
  }

  public Decoder decoder() {
    return decoder;
  }

  /** The vision tower, or null for a text-only model. */
  public VisionTower visionTower() {
    return visionTower;
  }

  /** The image preprocessor, or null for a text-only model. */
  public ImagePreprocessor preprocessor() {
    return preprocessor;
  }

  public ImageDecoder imageDecoder() {
    return imageDecoder;
  }

  public PromptAssembler assembler() {
    return assembler;
  }

  @Override
  public void close() {
    decoder.close();
    checkpoint.close();
  }
}
