package dev.owlery.engine.config;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.owlery.engine.testing.Fixtures;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ModelConfigTest {

  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir Path dir;

  @Test
  void stories260kParsesAsPlainLlamaWithGqa() {
    ModelConfig config = ModelConfig.load(Fixtures.stories260k());
    assertThat(config.modelType()).isEqualTo("llama");
    assertThat(config.multimodal()).isFalse();
    assertThat(config.vision()).isNull();
    assertThat(config.abstractor()).isNull();
    LlamaConfig t = config.text();
    assertThat(t.vocabSize()).isEqualTo(512);
    assertThat(t.hiddenSize()).isEqualTo(64);
    assertThat(t.intermediateSize()).isEqualTo(172);
    assertThat(t.numLayers()).isEqualTo(5);
    assertThat(t.numHeads()).isEqualTo(8);
    assertThat(t.numKvHeads()).isEqualTo(4);
    assertThat(t.headDim()).isEqualTo(8);
    assertThat(t.kvSize()).isEqualTo(32);
    assertThat(t.maxPositions()).isEqualTo(512);
    assertThat(t.rmsNormEps()).isEqualTo(1e-5f);
    assertThat(t.ropeTheta()).isEqualTo(10000f);
    assertThat(t.tieWordEmbeddings()).isTrue();
    assertThat(t.bosTokenId()).isEqualTo(1);
    assertThat(t.eosTokenId()).isEqualTo(2);
    assertThat(t.modalityAdaptive()).isFalse();
    assertThat(t.numModalities()).isEqualTo(1);
  }

  @Test
  void tinyOwl2ParsesEverySize() {
    ModelConfig config = ModelConfig.load(Fixtures.tinyOwl2());
    assertThat(config.modelType()).isEqualTo("mplug_owl2");
    assertThat(config.multimodal()).isTrue();
    LlamaConfig t = config.text();
    assertThat(t.vocabSize()).isEqualTo(32000);
    assertThat(t.hiddenSize()).isEqualTo(64);
    assertThat(t.intermediateSize()).isEqualTo(172);
    assertThat(t.numLayers()).isEqualTo(2);
    assertThat(t.numHeads()).isEqualTo(4);
    assertThat(t.numKvHeads()).isEqualTo(4);
    assertThat(t.headDim()).isEqualTo(16);
    assertThat(t.maxPositions()).isEqualTo(256);
    assertThat(t.rmsNormEps()).isEqualTo(1e-5f);
    assertThat(t.ropeTheta()).isEqualTo(10000f);
    assertThat(t.tieWordEmbeddings()).isFalse();
    assertThat(t.modalityAdaptive()).isTrue();
    assertThat(t.numModalities()).isEqualTo(2);
    VisionConfig v = config.vision();
    assertThat(v.hiddenSize()).isEqualTo(64);
    assertThat(v.intermediateSize()).isEqualTo(256);
    assertThat(v.numLayers()).isEqualTo(2);
    assertThat(v.numHeads()).isEqualTo(4);
    assertThat(v.headDim()).isEqualTo(16);
    assertThat(v.imageSize()).isEqualTo(56);
    assertThat(v.patchSize()).isEqualTo(14);
    assertThat(v.gridSize()).isEqualTo(4);
    assertThat(v.numPatches()).isEqualTo(16);
    assertThat(v.numTokens()).isEqualTo(17);
    assertThat(v.layerNormEps()).isEqualTo(1e-6f);
    AbstractorConfig a = config.abstractor();
    assertThat(a.numQueries()).isEqualTo(8);
    assertThat(a.hiddenSize()).isEqualTo(64);
    assertThat(a.encoderHiddenSize()).isEqualTo(64);
    assertThat(a.numLayers()).isEqualTo(2);
    assertThat(a.numHeads()).isEqualTo(4);
    assertThat(a.intermediateSize()).isEqualTo(176);
    assertThat(a.layerNormEps()).isEqualTo(1e-6f);
    assertThat(a.gridSize()).isEqualTo(4);
  }

  /** The tiny-owl2 config.json with one change applied. */
  private static ObjectNode tinyOwl2(Consumer<ObjectNode> change) throws IOException {
    ObjectNode root = (ObjectNode) JSON.readTree(Fixtures.tinyOwl2().resolve("config.json").toFile());
    change.accept(root);
    return root;
  }

  private static ObjectNode abstractor(ObjectNode root) {
    return (ObjectNode) root.path("visual_config").path("visual_abstractor");
  }

  @Test
  void aMissingDirectoryOrConfigIsSaidInThoseWords() throws IOException {
    Path absent = dir.resolve("nope");
    Path file = Files.writeString(dir.resolve("weights.bin"), "x");

    assertThatThrownBy(() -> ModelConfig.load(absent))
        .isInstanceOf(IllegalArgumentException.class).hasMessage("no such directory: " + absent);
    assertThatThrownBy(() -> ModelConfig.load(dir))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("no config.json in " + dir + ": is this a model directory?");
    assertThatThrownBy(() -> ModelConfig.load(file))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage(file + " is a file; give the model directory that holds config.json");
  }

  @Test
  void gqaIsRejectedForMplugOwl2() throws IOException {
    ObjectNode root = tinyOwl2(r -> r.put("num_key_value_heads", 2));
    assertThatThrownBy(() -> ModelConfig.parse(root))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageStartingWith("num_key_value_heads (2) != num_attention_heads (4)");
  }

  @Test
  void ropeScalingIsRejected() throws IOException {
    ObjectNode root = tinyOwl2(r -> r.putObject("rope_scaling").put("type", "linear").put("factor", 2.0));
    assertThatThrownBy(() -> ModelConfig.parse(root))
        .hasMessage("rope_scaling {\"type\":\"linear\",\"factor\":2.0} is not supported (only null)");
  }

  @Test
  void gridSizeMismatchIsRejected() throws IOException {
    ObjectNode root = tinyOwl2(r -> abstractor(r).put("grid_size", 32));
    assertThatThrownBy(() -> ModelConfig.parse(root))
        .hasMessage("visual_abstractor.grid_size (32) must equal image_size / patch_size (4) (spec §3)");
  }

  @Test
  void nullGridSizeMeans32() throws IOException {
    // spec §8: null -> 32, which a 56 px / 14 px tower (grid 4) then rejects
    ObjectNode root = tinyOwl2(r -> abstractor(r).putNull("grid_size"));
    assertThatThrownBy(() -> ModelConfig.parse(root))
        .hasMessage("visual_abstractor.grid_size (32) must equal image_size / patch_size (4) (spec §3)");
  }

  @Test
  void encoderHiddenSizeMismatchIsRejected() throws IOException {
    ObjectNode root = tinyOwl2(r -> abstractor(r).put("encoder_hidden_size", 128));
    assertThatThrownBy(() -> ModelConfig.parse(root))
        .hasMessageStartingWith("visual_abstractor.encoder_hidden_size (128) must equal visual_model.hidden_size (64)");
  }

  @Test
  void addV2tPosEmbIsRejected() throws IOException {
    ObjectNode root = tinyOwl2(r -> abstractor(r).put("add_v2t_pos_emb", true));
    assertThatThrownBy(() -> ModelConfig.parse(root))
        .hasMessage("visual_abstractor.add_v2t_pos_emb true is not supported (spec §3)");
  }

  @Test
  void clsTokenOffIsRejected() throws IOException {
    ObjectNode root = tinyOwl2(r -> abstractor(r).put("use_cls_token", false));
    assertThatThrownBy(() -> ModelConfig.parse(root))
        .hasMessage("visual_abstractor.use_cls_token false is not supported (spec §8)");
  }

  @Test
  void fieldErrorsNameTheFieldAndTheFile() throws IOException {
    Files.writeString(dir.resolve("config.json"), tinyOwl2(r -> r.remove("vocab_size")).toString());
    assertThatThrownBy(() -> ModelConfig.load(dir))
        .hasMessage(dir.resolve("config.json") + ": config field 'vocab_size' is missing");
    Files.writeString(dir.resolve("config.json"), tinyOwl2(r -> r.put("hidden_size", "64")).toString());
    assertThatThrownBy(() -> ModelConfig.load(dir))
        .hasMessageEndingWith("config field 'hidden_size' must be an integer, got \"64\"");
    ObjectNode badAbstractor = tinyOwl2(r -> abstractor(r).put("num_learnable_queries", 1.5));
    assertThatThrownBy(() -> ModelConfig.parse(badAbstractor))
        .hasMessage("config field 'visual_abstractor.num_learnable_queries' must be an integer, got 1.5");
    ObjectNode unknown = tinyOwl2(r -> r.put("model_type", "mistral"));
    assertThatThrownBy(() -> ModelConfig.parse(unknown))
        .hasMessage("model_type \"mistral\" is not supported (expected \"mplug_owl2\" or \"llama\")");
  }

  @Test
  void plainLlamaDefaultsFollowHuggingFace() throws IOException {
    ObjectNode root = (ObjectNode) JSON.readTree(Fixtures.stories260k().resolve("config.json").toFile());
    for (String f : new String[] {"tie_word_embeddings", "rms_norm_eps", "rope_theta", "max_position_embeddings",
        "num_key_value_heads"}) {
      root.remove(f);
    }
    root.putNull("head_dim");
    LlamaConfig t = ModelConfig.parse(root).text();
    assertThat(t.tieWordEmbeddings()).isFalse(); // LlamaConfig's default
    assertThat(t.rmsNormEps()).isEqualTo(1e-6f);
    assertThat(t.ropeTheta()).isEqualTo(10000f);
    assertThat(t.maxPositions()).isEqualTo(2048);
    assertThat(t.numKvHeads()).isEqualTo(8);
    assertThat(t.headDim()).isEqualTo(8);
    root.put("num_attention_heads", 6); // 64 / 6 does not divide, and head_dim is null
    assertThatThrownBy(() -> ModelConfig.parse(root))
        .hasMessage("hidden_size (64) must be a multiple of num_attention_heads (6)");
  }
}
