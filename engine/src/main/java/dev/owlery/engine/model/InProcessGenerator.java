package dev.owlery.engine.model;

import dev.owlery.engine.decoder.Decoder;
import dev.owlery.engine.decoder.DecoderSequence;
import dev.owlery.engine.decoder.GenerationResult;
import dev.owlery.engine.decoder.Generator;
import dev.owlery.engine.decoder.StopCondition;
import dev.owlery.engine.kv.KvCacheDtype;
import dev.owlery.engine.sampling.Sampler;
import dev.owlery.engine.tokenizer.ImageToken;
import dev.owlery.engine.tokenizer.StreamingDetokenizer;
import dev.owlery.engine.vision.preprocess.AspectRatioPolicy;
import dev.owlery.engine.vision.preprocess.PixelValues;
import dev.owlery.engine.vision.preprocess.RgbImage;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Runs one request end to end in this process (spec §0): template and tokenize, decode and
 * preprocess each picture, encode it with the vision tower, splice, prefill, decode, detokenize
 * as the tokens come.
 */
public final class InProcessGenerator {

  private final OwlModel model;
  private final KvCacheDtype kvCacheDtype;

  /** Generates with a {@link KvCacheDtype#DEFAULT} KV cache. */
  public InProcessGenerator(OwlModel model) {
    this(model, KvCacheDtype.DEFAULT);
  }

  /** Generates with each sequence's KV cache stored as {@code kvCacheDtype}. */
  public InProcessGenerator(OwlModel model, KvCacheDtype kvCacheDtype) {
    this.model = model;
    this.kvCacheDtype = kvCacheDtype;
  }

  /** The prompt's token ids: templated and tokenized text, or the given ids. */
  public int[] tokenize(GenerationRequest request) {
    return switch (request.prompt()) {
      case Prompt.Text text -> model.tokenizer().tokenizeImagePrompt(
          request.template().prompt(text.text(), request.images().size()));
      case Prompt.TokenIds ids -> ids.ids();
    };
  }

  /** Visual embeddings ({@code numVisualTokens x hiddenSize}) of each picture, in order. */
  public List<float[]> encodeImages(List<byte[]> images, AspectRatioPolicy policy) {
    if (images.isEmpty()) {
      return List.of();
    }
    if (model.visionTower() == null) {
      throw new IllegalArgumentException(
          "model '%s' is text-only (model_type %s): it cannot take images"
              .formatted(model.directory(), model.config().modelType()));
    }
    List<float[]> out = new ArrayList<>(images.size());
    for (int i = 0; i < images.size(); i++) {
      RgbImage rgb;
      try {
        rgb = model.imageDecoder().decode(images.get(i));
      } catch (IllegalArgumentException e) {
        throw new ImageInputException(i, e);
      }
      PixelValues pixels = model.preprocessor().preprocess(rgb, policy);
      out.add(model.visionTower().encode(pixels.data()));
    }
    return out;
  }

  /** Generates for {@code request}, telling {@code listener} each token as it is chosen. */
  public Completion generate(GenerationRequest request, CompletionListener listener) {
    int[] promptIds = tokenize(request);
    AssembledPrompt prompt = model.assembler().assemble(promptIds, encodeImages(request.images(), request.aspectRatio()));
    return generate(prompt, request, listener);
  }

  /** Generates after an already assembled prompt (the fixture tests feed reference embeddings this way). */
  public Completion generate(AssembledPrompt prompt, GenerationRequest request, CompletionListener listener) {
    Decoder decoder = model.decoder();
    int vocab = decoder.config().vocabSize();
    int maxPositions = decoder.config().maxPositions();
    GenerationLimits.checkMaxNewTokens(request.maxNewTokens(), maxPositions, model.name());
    GenerationLimits.checkPromptFits(prompt.numRows(), prompt.numImageRows(), maxPositions, model.name());
    DecoderSequence sequence = decoder.newSequence(Math.min(maxPositions, prompt.numRows() + request.maxNewTokens()),
        kvCacheDtype);
    Sampler sampler = new Sampler(request.sampling(), vocab);
    sampler.observe(Arrays.stream(prompt.tokenIds()).filter(id -> id != ImageToken.INDEX).toArray());
    StreamingDetokenizer detokenizer = model.sentencePiece().newStreamingDetokenizer();
    float[] promptLogits = request.keepLogits() ? new float[Math.multiplyExact(prompt.numRows(), vocab)] : new float[0];
    List<float[]> stepLogits = new ArrayList<>();
    StopCondition stop = StopCondition.eosOrLength(decoder.config().eosTokenId(), request.maxNewTokens());
    GenerationResult result = new Generator(decoder).generate(sequence, prompt.inputsEmbeds(), prompt.modalities(),
        prompt.numRows(), sampler, stop, promptLogits,
        (token, logits) -> {
          if (request.keepLogits()) {
            stepLogits.add(Arrays.copyOf(logits, vocab));
          }
          listener.onToken(token, stop.isStopToken(token) ? "" : detokenizer.next(token));
        });
    int[] tokens = result.tokenIds();
    int[] textTokens = Arrays.stream(tokens).filter(t -> !stop.isStopToken(t)).toArray();
    String text = model.sentencePiece().decode(textTokens).strip();
    float[] steps = new float[Math.multiplyExact(stepLogits.size(), vocab)];
    for (int i = 0; i < stepLogits.size(); i++) {
      System.arraycopy(stepLogits.get(i), 0, steps, i * vocab, vocab);
    }
    return new Completion(prompt.tokenIds(), tokens, text, result.finishReason(), prompt.numRows(), prompt.numImageRows(),
        promptLogits, steps);
  }
}
