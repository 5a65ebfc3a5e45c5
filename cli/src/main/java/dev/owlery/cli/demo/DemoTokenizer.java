package dev.owlery.cli.demo;

import dev.owlery.engine.tokenizer.proto.SentencePieceModel.ModelProto;
import dev.owlery.engine.tokenizer.proto.SentencePieceModel.ModelProto.SentencePiece;
import dev.owlery.engine.tokenizer.proto.SentencePieceModel.NormalizerSpec;
import dev.owlery.engine.tokenizer.proto.SentencePieceModel.TrainerSpec;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * Builds the demo model's {@code tokenizer.model}: a small SentencePiece BPE vocabulary laid out
 * like LLaMA-2's ({@code <unk>}, {@code <s>}, {@code </s>}, 256 byte pieces, then text pieces), so
 * the demo runs through exactly the same tokenizer code as the real checkpoint. Every word piece
 * comes with all its prefixes, which gives BPE a merge path to it.
 */
final class DemoTokenizer {

  private static final String SPACE = "\u2581";
  private static final List<String> WORDS = List.of(
      "the", "a", "an", "is", "in", "on", "of", "and", "to", "with", "what", "this", "that", "picture",
      "image", "house", "sun", "sky", "grass", "tree", "red", "blue", "green", "yellow", "white", "roof",
      "window", "door", "cloud", "bird", "owl", "there", "are", "it", "shows", "small", "big", "bright",
      "day", "night", "under", "above", "near", "one", "two", "three", "you", "see", "can", "describe",
      "USER", "ASSISTANT", "Hello", "Who", "Describe", "What", "The", "A", "It", "Owlery", "demo", "model");

  private DemoTokenizer() {}

  /** The model proto, with a vocabulary padded to a multiple of {@code vocabMultiple}. */
  static ModelProto build(int vocabMultiple) {
    Set<String> textPieces = new LinkedHashSet<>();
    textPieces.add(SPACE);
    for (char c = 32; c < 127; c++) {
      if (c != ' ') {
        textPieces.add(String.valueOf(c));
      }
    }
    for (String word : WORDS) {
      String spaced = SPACE + word;
      for (int end = 2; end <= spaced.length(); end++) {
        textPieces.add(spaced.substring(0, end));
      }
      for (int end = 2; end <= word.length(); end++) {
        textPieces.add(word.substring(0, end));
      }
    }
    ModelProto.Builder model = ModelProto.newBuilder();
    model.addPieces(piece("<unk>", 0f, SentencePiece.Type.UNKNOWN));
    model.addPieces(piece("<s>", 0f, SentencePiece.Type.CONTROL));
    model.addPieces(piece("</s>", 0f, SentencePiece.Type.CONTROL));
    for (int b = 0; b < 256; b++) {
      model.addPieces(piece("<0x%02X>".formatted(b), 0f, SentencePiece.Type.BYTE));
    }
    // Longer pieces score higher, so BPE prefers the longest merge the vocabulary allows.
    int rank = 0;
    for (String p : textPieces) {
      model.addPieces(piece(p, -1000f + p.codePointCount(0, p.length()) * 10f - rank * 1e-3f, SentencePiece.Type.NORMAL));
      rank++;
    }
    // Pad with plain word pieces ("▁hoot0", ...) so any id the random weights pick decodes to text.
    int filler = 0;
    while (model.getPiecesCount() % vocabMultiple != 0) {
      model.addPieces(piece(SPACE + "hoot" + filler++, -2000f, SentencePiece.Type.NORMAL));
    }
    model.setTrainerSpec(TrainerSpec.newBuilder()
        .setModelType(TrainerSpec.ModelType.BPE)
        .setVocabSize(model.getPiecesCount())
        .setByteFallback(true)
        .setSplitDigits(true)
        .setAllowWhitespaceOnlyPieces(true)
        .setUnkId(0).setBosId(1).setEosId(2).setPadId(-1));
    model.setNormalizerSpec(NormalizerSpec.newBuilder()
        .setName("identity").setAddDummyPrefix(true).setRemoveExtraWhitespaces(false).setEscapeWhitespaces(true));
    return model.build();
  }

  private static SentencePiece piece(String text, float score, SentencePiece.Type type) {
    return SentencePiece.newBuilder().setPiece(text).setScore(score).setType(type).build();
  }
}
