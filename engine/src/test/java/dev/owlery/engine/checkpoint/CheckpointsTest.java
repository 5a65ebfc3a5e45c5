package dev.owlery.engine.checkpoint;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.owlery.engine.tensor.DType;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CheckpointsTest {

  @TempDir Path dir;

  private static SafetensorsWriter safetensors(float value) {
    return new SafetensorsWriter().add("w", DType.F32, new long[] {1}, new float[] {value});
  }

  private static TorchCheckpointWriter torch(float value) {
    return new TorchCheckpointWriter().addView("w", TorchCheckpointWriter.storage(DType.F32, new float[] {value}), 0,
        new long[] {1}, new long[] {1});
  }

  @Test
  void anEmptyDirectoryListsWhatWasLookedFor() {
    assertThatThrownBy(() -> Checkpoints.open(dir))
        .isInstanceOf(CheckpointException.class)
        .hasMessage(dir + ": no checkpoint found; looked for model.safetensors, model.safetensors.index.json,"
            + " model-*-of-*.safetensors, pytorch_model.bin, pytorch_model.bin.index.json and pytorch_model-*-of-*.bin");
  }

  @Test
  void prefersSafetensorsThenIndexesThenBinFilesInTheDocumentedOrder() throws IOException {
    torch(6).writeSharded(dir, 1, false);
    assertThat(valueOf(dir)).isEqualTo(6);
    torch(5).writeSharded(Files.createDirectory(dir.resolve("idx")), 1, true);
    Files.move(dir.resolve("idx/pytorch_model.bin.index.json"), dir.resolve("pytorch_model.bin.index.json"));
    // the index names pytorch_model-1-of-1.bin, which holds 6 in dir
    assertThat(Checkpoints.open(dir).location()).isEqualTo(dir.resolve("pytorch_model.bin.index.json"));
    torch(4).write(dir.resolve("pytorch_model.bin"));
    assertThat(valueOf(dir)).isEqualTo(4);
    safetensors(3).writeSharded(dir, 1000);
    Files.delete(dir.resolve("model.safetensors.index.json"));
    assertThat(valueOf(dir)).isEqualTo(3);
    safetensors(2).writeSharded(dir, 1000);
    assertThat(Checkpoints.open(dir).location()).isEqualTo(dir.resolve("model.safetensors.index.json"));
    safetensors(1).write(dir.resolve("model.safetensors"));
    assertThat(valueOf(dir)).isEqualTo(1);
  }

  private static float valueOf(Path dir) {
    try (Checkpoint ck = Checkpoints.open(dir)) {
      return ck.tensor("w").getFloat(0);
    }
  }

  @Test
  void opensTheFixtureDirectories() {
    Path stories = dev.owlery.engine.testing.Fixtures.stories260k();
    try (Checkpoint ck = Checkpoints.open(stories)) {
      assertThat(ck.location()).isEqualTo(stories.resolve("model.safetensors"));
      assertThat(ck.tensor("model.embed_tokens.weight", 512, 64).dtype()).isEqualTo(DType.F32);
    }
  }

  @Test
  void opensSingleFilesByName() {
    torch(7).write(dir.resolve("weights.pt"));
    safetensors(8).write(dir.resolve("weights.safetensors"));
    try (Checkpoint pt = Checkpoints.open(dir.resolve("weights.pt"));
        Checkpoint st = Checkpoints.open(dir.resolve("weights.safetensors"))) {
      assertThat(pt.tensor("w").getFloat(0)).isEqualTo(7);
      assertThat(st.tensor("w").getFloat(0)).isEqualTo(8);
    }
  }

  @Test
  void aShardSetWithAGapIsReported() throws IOException {
    torch(1).writeSharded(dir, 1, false);
    Files.move(dir.resolve("pytorch_model-1-of-1.bin"), dir.resolve("pytorch_model-1-of-3.bin"));
    Files.copy(dir.resolve("pytorch_model-1-of-3.bin"), dir.resolve("pytorch_model-3-of-3.bin"));
    assertThatThrownBy(() -> Checkpoints.open(dir))
        .hasMessage(dir + ": sharded checkpoint of 3 files is missing shard(s) [2] (pattern pytorch_model-(\\d+)-of-(\\d+)\\.bin)");
  }

  @Test
  void aMissingDirectoryIsReported() {
    Path missing = dir.resolve("nope");
    assertThatThrownBy(() -> Checkpoints.open(missing))
        .hasMessage(missing + ": no such model directory or checkpoint file");
  }
}
