package dev.owlery.engine.checkpoint;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.owlery.engine.checkpoint.TorchCheckpointWriter.DictStyle;
import dev.owlery.engine.checkpoint.TorchCheckpointWriter.Storage;
import dev.owlery.engine.tensor.DType;
import dev.owlery.engine.tensor.Tensor;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

class TorchCheckpointTest {

  @TempDir Path dir;

  private static final float[] SIX = {0, 1, 2, 3, 4, 5};

  /** A [2, 3] F32 matrix, its transpose as a strided BF16 view, a row view at an offset, and integers. */
  private static TorchCheckpointWriter sample() {
    Storage f32 = TorchCheckpointWriter.storage(DType.F32, SIX);
    Storage bf16 = TorchCheckpointWriter.storage(DType.BF16, SIX);
    return new TorchCheckpointWriter()
        .addView("a.weight", f32, 0, new long[] {2, 3}, new long[] {3, 1})
        .addView("b", bf16, 0, new long[] {3, 2}, new long[] {1, 3}) // transpose: not contiguous
        .addView("c", f32, 3, new long[] {3}, new long[] {1}) // a.weight[1], shares the storage
        .addView("ids", TorchCheckpointWriter.storage(DType.I64, new long[] {-1, 1L << 40}), 0,
            new long[] {2}, new long[] {1})
        .addView("i32", TorchCheckpointWriter.storage(DType.I32, new long[] {7, -7, 9}), 1,
            new long[] {2}, new long[] {1})
        .addView("mask", TorchCheckpointWriter.storage(DType.U8, new long[] {0, 255}), 0,
            new long[] {2}, new long[] {1})
        .addView("half", TorchCheckpointWriter.storage(DType.F16, new float[] {0.5f, -2f}), 0,
            new long[] {1, 2}, new long[] {2, 1})
        .addView("scalar", TorchCheckpointWriter.storage(DType.F32, new float[] {42f}), 0,
            new long[] {}, new long[] {});
  }

  private static void assertSample(Checkpoint ck) {
    assertThat(ck.names()).containsExactly("a.weight", "b", "c", "ids", "i32", "mask", "half", "scalar");
    assertThat(ck.tensor("a.weight", 2, 3).toFloatArray()).containsExactly(SIX);
    Tensor b = ck.tensor("b", 3, 2);
    assertThat(b.dtype()).isEqualTo(DType.BF16);
    assertThat(b.toFloatArray()).containsExactly(0, 3, 1, 4, 2, 5);
    assertThat(ck.tensor("c", 3).toFloatArray()).containsExactly(3, 4, 5);
    assertThat(ck.tensor("ids").toLongArray()).containsExactly(-1, 1L << 40);
    assertThat(ck.tensor("i32").toLongArray()).containsExactly(-7, 9);
    assertThat(ck.tensor("mask").toLongArray()).containsExactly(0, 255);
    assertThat(ck.tensor("half", 1, 2).toFloatArray()).containsExactly(0.5f, -2f);
    assertThat(ck.tensor("scalar").toFloatArray()).containsExactly(42f);
  }

  @ParameterizedTest
  @EnumSource(DictStyle.class)
  void readsEveryDictStyleTorchSaves(DictStyle style) {
    Path file = dir.resolve("pytorch_model.bin");
    sample().dictStyle(style).write(file);
    try (Checkpoint ck = TorchCheckpoint.openFile(file)) {
      assertSample(ck);
    }
  }

  @Test
  void contiguousTensorsAreSlicesOfTheFileMappingNotCopies() throws IOException {
    Path file = dir.resolve("pytorch_model.bin");
    sample().write(file);
    try (TorchCheckpoint ck = TorchCheckpoint.openFile(file)) {
      Tensor a = ck.tensor("a.weight");
      Tensor c = ck.tensor("c");
      assertThat(a.data().isMapped()).isTrue();
      // c is a.weight[1]: the same bytes, 3 floats in
      assertThat(c.data().address()).isEqualTo(a.data().address() + 12);
      // the data is where the zip says, 64-byte aligned as torch.save lays it out
      assertThat(a.data().address() % 64).isZero();
      assertThat(ck.tensor("b").data().isMapped()).isFalse(); // the strided view was materialised
    }
  }

  @Test
  void readsZip64Archives() {
    Path file = dir.resolve("pytorch_model.bin");
    sample().zip64(true).write(file);
    try (Checkpoint ck = TorchCheckpoint.openFile(file)) {
      assertSample(ck);
    }
  }

  @Test
  void readsTheLegacyNonZipFormat() {
    Path file = dir.resolve("pytorch_model.bin");
    sample().writeLegacy(file);
    try (Checkpoint ck = TorchCheckpoint.openFile(file)) {
      assertSample(ck);
    }
  }

  @Test
  void findsEntriesWhateverThePrefix() {
    Path file = dir.resolve("weights.bin");
    sample().prefix("archive").write(file);
    try (Checkpoint ck = Checkpoints.open(file)) {
      assertSample(ck);
    }
  }

  @Test
  void materialisesExpandedViewsWithZeroStrides() {
    Path file = dir.resolve("pytorch_model.bin");
    new TorchCheckpointWriter().addView("expanded", TorchCheckpointWriter.storage(DType.F16, new float[] {1, 2}), 0,
        new long[] {3, 2}, new long[] {0, 1}).write(file);
    try (Checkpoint ck = TorchCheckpoint.openFile(file)) {
      assertThat(ck.tensor("expanded", 3, 2).toFloatArray()).containsExactly(1, 2, 1, 2, 1, 2);
    }
  }

  @Test
  void rejectsUnhashableDictKeys() throws IOException {
    PickleOut p = new PickleOut().proto().op('}').op(']').integer(1).op('s').op('.');
    assertThatThrownBy(() -> TorchCheckpoint.openFile(zipWithPickle(p.bytes())))
        .hasMessageContaining("a ArrayList cannot be a dict key in a state dict");
  }

  @Test
  void rejectsAPickleNamingOsSystem() throws IOException {
    PickleOut p = new PickleOut().proto().global("os", "system").string("echo owned").op(0x85).op('R').op('.');
    Path file = zipWithPickle(p.bytes());
    assertThatThrownBy(() -> TorchCheckpoint.openFile(file))
        .isInstanceOf(CheckpointException.class)
        .hasMessageContaining("pickle global 'os.system' is not allowed")
        .hasMessageContaining("collections.OrderedDict");
  }

  @Test
  void rejectsAPickleNamingBuiltinsEvalInsideAStateDict() throws IOException {
    PickleOut p = new PickleOut().proto().op('}').put().mark().string("w")
        .global("builtins", "eval").string("__import__('os')").op(0x85).op('R').op('u').op('.');
    Path file = zipWithPickle(p.bytes());
    assertThatThrownBy(() -> TorchCheckpoint.openFile(file))
        .isInstanceOf(CheckpointException.class)
        .hasMessageContaining("pickle global 'builtins.eval' is not allowed");
  }

  @Test
  void rejectsUnsupportedStorageTypesByName() throws IOException {
    PickleOut p = new PickleOut().proto().global("torch", "DoubleStorage").op('.');
    assertThatThrownBy(() -> TorchCheckpoint.openFile(zipWithPickle(p.bytes())))
        .hasMessageContaining("storage type torch.DoubleStorage is not supported");
  }

  @Test
  void rejectsOpcodesAStateDictDoesNotUse() throws IOException {
    PickleOut p = new PickleOut().proto().op(0x81).op('.'); // NEWOBJ
    assertThatThrownBy(() -> TorchCheckpoint.openFile(zipWithPickle(p.bytes())))
        .hasMessageContaining("data.pkl, byte 2: unsupported pickle opcode 0x81");
  }

  @Test
  void truncatedZipIsOneClearError() throws IOException {
    Path file = dir.resolve("pytorch_model.bin");
    sample().write(file);
    byte[] bytes = Files.readAllBytes(file);
    Files.write(file, Arrays.copyOf(bytes, bytes.length - 30));
    assertThatThrownBy(() -> TorchCheckpoint.openFile(file))
        .isInstanceOf(CheckpointException.class)
        .hasMessageStartingWith(file.toString())
        .hasMessageContaining("no zip end-of-central-directory record");
  }

  @Test
  void centralDirectoryPointingPastTheEndIsReported() throws IOException {
    Path file = dir.resolve("pytorch_model.bin");
    sample().write(file);
    byte[] bytes = Files.readAllBytes(file);
    bytes[bytes.length - 6] = (byte) 0xf0; // EOCD: central directory offset high byte
    Files.write(file, bytes);
    assertThatThrownBy(() -> TorchCheckpoint.openFile(file))
        .hasMessageContaining("lies outside the %d-byte file (truncated zip?)".formatted(bytes.length));
  }

  @Test
  void missingDataPklIsReported() throws IOException {
    TorchZipOut zip = new TorchZipOut(false);
    zip.add("archive/data/0", new byte[16]);
    Path file = dir.resolve("pytorch_model.bin");
    Files.write(file, zip.finish());
    assertThatThrownBy(() -> TorchCheckpoint.openFile(file))
        .hasMessageContaining("no '<prefix>/data.pkl' entry among the 1 zip entries");
  }

  @Test
  void storageShorterThanItsPersistentIdSaysIsReported() throws IOException {
    Path good = dir.resolve("good.bin");
    new TorchCheckpointWriter().addView("w", TorchCheckpointWriter.storage(DType.F32, SIX), 0,
        new long[] {6}, new long[] {1}).prefix("archive").write(good);
    byte[] pickle = readEntry(good, "archive/data.pkl");
    TorchZipOut zip = new TorchZipOut(false);
    zip.add("archive/data.pkl", pickle);
    zip.add("archive/data/0", new byte[20]); // 5 floats, the id says 6
    Path file = dir.resolve("pytorch_model.bin");
    Files.write(file, zip.finish());
    assertThatThrownBy(() -> TorchCheckpoint.openFile(file))
        .isInstanceOf(CheckpointException.class)
        .hasMessage("%s: tensor 'w': storage 'archive/data/0' holds 20 bytes, shorter than the 6 elements of F32"
            .formatted(file) + " (24 bytes) it should hold (truncated file?)");
  }

  @Test
  void storageEntryMissingIsReported() throws IOException {
    Path good = dir.resolve("good.bin");
    new TorchCheckpointWriter().addView("w", TorchCheckpointWriter.storage(DType.F32, SIX), 0,
        new long[] {6}, new long[] {1}).prefix("archive").write(good);
    TorchZipOut zip = new TorchZipOut(false);
    zip.add("archive/data.pkl", readEntry(good, "archive/data.pkl"));
    Path file = dir.resolve("pytorch_model.bin");
    Files.write(file, zip.finish());
    assertThatThrownBy(() -> TorchCheckpoint.openFile(file))
        .hasMessageContaining("tensor 'w': its storage entry 'archive/data/0' is missing");
  }

  @Test
  void viewReachingPastItsStorageIsReported() {
    Path file = dir.resolve("pytorch_model.bin");
    new TorchCheckpointWriter().addView("w", TorchCheckpointWriter.storage(DType.F32, SIX), 2,
        new long[] {2, 3}, new long[] {3, 1}).write(file);
    assertThatThrownBy(() -> TorchCheckpoint.openFile(file))
        .hasMessageContaining("tensor 'w': size [2, 3], stride [3, 1] at storage offset 2 reaches element 7,"
            + " but its storage holds 6 elements");
  }

  @Test
  void expandedViewClaimingMoreElementsThanItsStorageIsRefusedBeforeCopying() {
    Path file = dir.resolve("pytorch_model.bin");
    new TorchCheckpointWriter().addView("w", TorchCheckpointWriter.storage(DType.F32, SIX), 0,
        new long[] {1L << 30}, new long[] {0}).write(file);
    assertThatThrownBy(() -> TorchCheckpoint.openFile(file))
        .hasMessageContaining("tensor 'w': size [1073741824] with stride [0] repeats its 6-element storage into"
            + " 4294967296 bytes, more than the ")
        .hasMessageEndingWith("-byte file; save tensor.contiguous() instead");
  }

  @Test
  void truncatedPickleIsReported() throws IOException {
    Path good = dir.resolve("good.bin");
    sample().prefix("archive").write(good);
    byte[] pickle = readEntry(good, "archive/data.pkl");
    Path file = zipWithPickle(Arrays.copyOf(pickle, pickle.length / 2));
    assertThatThrownBy(() -> TorchCheckpoint.openFile(file))
        .isInstanceOf(CheckpointException.class)
        .hasMessageContaining("the pickle ends early (truncated file?)");
  }

  @Test
  void compressedEntriesAreReported() throws IOException {
    Path file = dir.resolve("pytorch_model.bin");
    try (ZipOutputStream zip = new ZipOutputStream(Files.newOutputStream(file))) {
      zip.putNextEntry(new ZipEntry("archive/data.pkl"));
      zip.write(new PickleOut().proto().op('}').op('.').bytes());
      zip.closeEntry();
    }
    assertThatThrownBy(() -> TorchCheckpoint.openFile(file))
        .hasMessageContaining("zip entry 'archive/data.pkl' is compressed (method 8)");
  }

  @Test
  void aFileThatIsNeitherZipNorLegacyIsReported() throws IOException {
    Path file = dir.resolve("pytorch_model.bin");
    Files.writeString(file, "<html>not found</html>");
    assertThatThrownBy(() -> TorchCheckpoint.openFile(file))
        .hasMessage(file + ": not a torch.save file: neither a zip archive nor the legacy pickle format");
  }

  @Test
  void aStateDictValueThatIsNotATensorIsReported() throws IOException {
    PickleOut p = new PickleOut().proto().op('}').put().string("step").integer(7).op('s').op('.');
    assertThatThrownBy(() -> TorchCheckpoint.openFile(zipWithPickle(p.bytes())))
        .hasMessageContaining("tensor 'step': the state dict value is not a tensor");
  }

  private Path zipWithPickle(byte[] pickle) throws IOException {
    TorchZipOut zip = new TorchZipOut(false);
    zip.add("archive/data.pkl", pickle);
    zip.add("archive/version", "3\n".getBytes(StandardCharsets.US_ASCII));
    Path file = dir.resolve("crafted.bin");
    Files.write(file, zip.finish());
    return file;
  }

  private static byte[] readEntry(Path zipFile, String name) throws IOException {
    try (var zip = new java.util.zip.ZipFile(zipFile.toFile())) {
      return zip.getInputStream(zip.getEntry(name)).readAllBytes();
    }
  }
}
