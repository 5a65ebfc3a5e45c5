package dev.owlery.engine.tokenizer;

import com.google.protobuf.InvalidProtocolBufferException;
import dev.owlery.engine.tokenizer.proto.SentencePieceModel.ModelProto;
import dev.owlery.engine.tokenizer.proto.SentencePieceModel.ModelProto.SentencePiece;
import dev.owlery.engine.tokenizer.proto.SentencePieceModel.NormalizerSpec;
import dev.owlery.engine.tokenizer.proto.SentencePieceModel.TrainerSpec;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A SentencePiece BPE tokenizer read from a {@code tokenizer.model} file (spec §6), encoding and decoding exactly as
 * {@code sentencepiece} 0.1.97-0.1.99 does for an identity normalizer: dummy prefix, spaces as {@code ▁}, merges by
 * piece score, byte fallback to {@code <0xNN>} pieces. Immutable and safe to share between threads.
 *
 * <p>{@code trainer_spec.split_digits} and the other splitting options shape the vocabulary at training time;
 * SentencePiece's BPE encoder does not read them, and neither does this one (a split-digits vocabulary has no
 * multi-digit pieces, so digits come out one per token; fixture llama2-tokenizer, case "12345").
 */
public final class SentencePieceTokenizer {

  private static final int NUM_BYTES = 256;

  private final String source;
  private final String[] pieces;
  private final SentencePiece.Type[] types;
  private final float[] scores;
  /** Decoded text of each non-byte piece: {@code ▁} read as a space. */
  private final String[] surfaces;
  /** For a BYTE piece its byte value 0-255, otherwise -1. */
  private final int[] byteValues;
  /** The id of each byte's {@code <0xNN>} piece, or null without byte fallback. */
  private final int[] byteIds;
  private final BpeModel bpe;
  private final SentencePieceNormalizer normalizer;
  private final int unkId;
  private final int bosId;
  private final int eosId;
  private final String unkSurface;

  private SentencePieceTokenizer(String source, ModelProto model) {
    this.source = source;
    TrainerSpec trainer = model.getTrainerSpec();
    NormalizerSpec normalizerSpec = model.getNormalizerSpec();
    checkSupported(model, trainer, normalizerSpec);
    int size = model.getPiecesCount();
    pieces = new String[size];
    types = new SentencePiece.Type[size];
    surfaces = new String[size];
    byteValues = new int[size];
    Arrays.fill(byteValues, -1);
    scores = new float[size];
    boolean[] unused = new boolean[size];
    Map<String, Integer> mergeableIds = new HashMap<>(size * 2);
    Map<String, Integer> reservedIds = new HashMap<>();
    List<String> userDefined = new ArrayList<>();
    int unk = -1;
    for (int id = 0; id < size; id++) {
      SentencePiece sp = model.getPieces(id);
      String piece = sp.getPiece();
      if (piece.isEmpty()) {
        throw invalid("piece %d is empty".formatted(id));
      }
      pieces[id] = piece;
      types[id] = sp.getType();
      scores[id] = sp.getScore();
      surfaces[id] = piece.replace(SentencePieceNormalizer.SPACE_SYMBOL, ' ');
      // model_interface.cc: NORMAL, USER_DEFINED and UNUSED pieces can be merged into; the others are reserved.
      Map<String, Integer> ids = switch (sp.getType()) {
        case NORMAL, USER_DEFINED, UNUSED -> mergeableIds;
        case UNKNOWN, CONTROL, BYTE -> reservedIds;
      };
      if (ids.putIfAbsent(piece, id) != null) {
        throw invalid("piece '%s' (id %d) is defined twice".formatted(piece, id));
      }
      switch (sp.getType()) {
        case UNUSED -> unused[id] = true;
        case USER_DEFINED -> userDefined.add(piece);
        case UNKNOWN -> unk = id;
        case BYTE -> byteValues[id] = parseBytePiece(id, piece, trainer.getByteFallback());
        case NORMAL, CONTROL -> { }
      }
    }
    if (unk < 0) {
      throw invalid("has no piece of type UNKNOWN");
    }
    unkId = unk;
    bosId = controlId(reservedIds, trainer.getBosPiece());
    eosId = controlId(reservedIds, trainer.getEosPiece());
    byteIds = trainer.getByteFallback() ? byteIds(reservedIds) : null;
    unkSurface = trainer.getUnkSurface();
    bpe = new BpeModel(mergeableIds, scores, unused, userDefined);
    normalizer = new SentencePieceNormalizer(normalizerSpec.getAddDummyPrefix(),
        normalizerSpec.getRemoveExtraWhitespaces(), normalizerSpec.getEscapeWhitespaces());
  }

  /** Reads and validates a SentencePiece {@code tokenizer.model}; a message names the file when it cannot be used. */
  public static SentencePieceTokenizer load(Path file) {
    byte[] bytes;
    try {
      bytes = Files.readAllBytes(file);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read tokenizer file " + file + ": " + e.getMessage(), e);
    }
    return parse(file.toString(), bytes);
  }

  /**
   * Reads and validates the bytes of a {@code tokenizer.model}; {@code source} names them in messages.
   *
   * @throws IllegalArgumentException when the bytes are not a SentencePiece model this class supports
   */
  static SentencePieceTokenizer parse(String source, byte[] bytes) {
    ModelProto model;
    try {
      model = ModelProto.parseFrom(bytes);
    } catch (InvalidProtocolBufferException e) {
      throw new IllegalArgumentException(
          "tokenizer file %s is not a SentencePiece model (protobuf ModelProto): %s".formatted(source, e.getMessage()), e);
    }
    return new SentencePieceTokenizer(source, model);
  }

  private void checkSupported(ModelProto model, TrainerSpec trainer, NormalizerSpec normalizerSpec) {
    if (model.getPiecesCount() == 0) {
      throw invalid("has no pieces (is it a SentencePiece tokenizer.model?)");
    }
    if (trainer.getModelType() != TrainerSpec.ModelType.BPE) {
      throw invalid("trainer_spec.model_type is %s; only BPE models are supported".formatted(trainer.getModelType()));
    }
    if (trainer.getTreatWhitespaceAsSuffix()) {
      throw invalid("trainer_spec.treat_whitespace_as_suffix is true; only prefix whitespace is supported");
    }
    for (NormalizerSpec spec : List.of(normalizerSpec, model.getDenormalizerSpec())) {
      if (!spec.getPrecompiledCharsmap().isEmpty() || !spec.getNormalizationRuleTsv().isEmpty()) {
        throw invalid("normalizer '%s' has character-mapping rules; only the identity normalizer is supported"
            .formatted(spec.getName()));
      }
    }
  }

  private int parseBytePiece(int id, String piece, boolean byteFallback) {
    if (!byteFallback) {
      throw invalid("piece %d '%s' is of type BYTE but trainer_spec.byte_fallback is false".formatted(id, piece));
    }
    if (piece.length() != 6 || !piece.startsWith("<0x") || !piece.endsWith(">")) {
      throw invalid("BYTE piece %d is '%s', expected <0xNN>".formatted(id, piece));
    }
    try {
      return Integer.parseInt(piece, 3, 5, 16);
    } catch (NumberFormatException e) {
      throw invalid("BYTE piece %d is '%s', expected <0xNN>".formatted(id, piece));
    }
  }

  private int[] byteIds(Map<String, Integer> reservedIds) {
    int[] ids = new int[NUM_BYTES];
    for (int b = 0; b < NUM_BYTES; b++) {
      String piece = "<0x%02X>".formatted(b);
      Integer id = reservedIds.get(piece);
      if (id == null || types[id] != SentencePiece.Type.BYTE) {
        throw invalid("trainer_spec.byte_fallback is true but byte piece %s is missing".formatted(piece));
      }
      ids[b] = id;
    }
    return ids;
  }

  /** sentencepiece_processor.cc bos_id()/eos_id(): the id of that piece when it is a CONTROL piece, else -1. */
  private int controlId(Map<String, Integer> reservedIds, String piece) {
    Integer id = reservedIds.get(piece);
    return id != null && types[id] == SentencePiece.Type.CONTROL ? id : -1;
  }

  private IllegalArgumentException invalid(String problem) {
    return new IllegalArgumentException("tokenizer file %s: %s".formatted(source, problem));
  }

  /**
   * SentencePiece ids of {@code text} ({@code sp.encode}), with BOS in front when asked. Special-token texts such as
   * {@code <s>} are ordinary characters here; {@link LlamaTokenizer} splits them out.
   *
   * @throws IllegalArgumentException when the text holds an unpaired UTF-16 surrogate (not UTF-8 encodable)
   */
  public int[] encode(String text, boolean addBos) {
    checkWellFormed(text);
    if (addBos && bosId < 0) {
      throw new IllegalStateException("tokenizer file %s defines no BOS piece".formatted(source));
    }
    String normalized = normalizer.normalize(text);
    List<String> segmented = bpe.segment(normalized);
    IdBuffer ids = new IdBuffer(segmented.size() + 1);
    if (addBos) {
      ids.add(bosId);
    }
    boolean previousIsUnknown = false;
    for (String piece : segmented) {
      int id = bpe.mergeableId(piece);
      boolean unknown = id < 0;
      if (!unknown) {
        ids.add(id);
      } else if (byteIds != null) {
        for (byte b : piece.getBytes(StandardCharsets.UTF_8)) {
          ids.add(byteIds[b & 0xFF]);
        }
      } else if (!previousIsUnknown) {
        // sentencepiece_processor.cc: a run of unknown pieces becomes one <unk>.
        ids.add(unkId);
      }
      previousIsUnknown = unknown;
    }
    return ids.toArray();
  }

  private static void checkWellFormed(String text) {
    for (int i = 0; i < text.length(); i++) {
      char c = text.charAt(i);
      if (Character.isHighSurrogate(c) && i + 1 < text.length() && Character.isLowSurrogate(text.charAt(i + 1))) {
        i++;
      } else if (Character.isSurrogate(c)) {
        throw new IllegalArgumentException(
            "text has an unpaired UTF-16 surrogate U+%04X at index %d; it cannot be encoded as UTF-8"
                .formatted((int) c, i));
      }
    }
  }

  /** The text of {@code ids} exactly as {@code sp.decode}: leading dummy space removed, control pieces dropped. */
  public String decode(int[] ids) {
    StreamingDetokenizer detokenizer = newStreamingDetokenizer();
    StringBuilder text = new StringBuilder();
    for (int id : ids) {
      text.append(detokenizer.next(id));
    }
    return text.append(detokenizer.finish()).toString();
  }

  /** A detokenizer for one sequence, fed one id at a time. */
  public StreamingDetokenizer newStreamingDetokenizer() {
    return new StreamingDetokenizer(this);
  }

  public int vocabSize() {
    return pieces.length;
  }

  /** The piece text of {@code id}, with {@code ▁} for a space. */
  public String piece(int id) {
    checkId(id);
    return pieces[id];
  }

  /** The score of {@code id}'s piece: merges into higher-scoring pieces are applied first. */
  public float score(int id) {
    checkId(id);
    return scores[id];
  }

  /** The type of {@code id}'s piece (NORMAL, CONTROL, BYTE, ...). */
  public SentencePiece.Type pieceType(int id) {
    checkId(id);
    return types[id];
  }

  public int unkId() {
    return unkId;
  }

  /** The BOS id, or -1 when the model has none. */
  public int bosId() {
    return bosId;
  }

  /** The EOS id, or -1 when the model has none. */
  public int eosId() {
    return eosId;
  }

  void checkId(int id) {
    if (id < 0 || id >= pieces.length) {
      throw new IllegalArgumentException("token id %d is outside the vocabulary [0, %d)".formatted(id, pieces.length));
    }
  }

  /** The byte of a BYTE piece, or -1 for any other piece. */
  int byteValue(int id) {
    return byteValues[id];
  }

  /** The decoded text of a non-byte piece ({@code ▁} read as a space). */
  String surface(int id) {
    return surfaces[id];
  }

  /** What an UNKNOWN piece decodes to ({@code trainer_spec.unk_surface}, " ⁇ " by default). */
  String unkSurface() {
    return unkSurface;
  }

  /** Whether decoding drops the space marker of the first piece (sentencepiece_processor.cc Decode). */
  boolean stripsLeadingSpace() {
    return normalizer.addDummyPrefix() || normalizer.removeExtraWhitespaces();
  }

  /** Whether a stripped leading space ends the stripping; with extra-space removal every leading space goes. */
  boolean leadingSpaceStripsOnce() {
    return !normalizer.removeExtraWhitespaces();
  }

  /** A growable int array, so encoding does not box ids. */
  private static final class IdBuffer {
    private int[] ids;
    private int size;

    IdBuffer(int capacity) {
      ids = new int[Math.max(capacity, 4)];
    }

    void add(int id) {
      if (size == ids.length) {
        ids = Arrays.copyOf(ids, size * 2);
      }
      ids[size++] = id;
    }

    int[] toArray() {
      return Arrays.copyOf(ids, size);
    }
  }
}
