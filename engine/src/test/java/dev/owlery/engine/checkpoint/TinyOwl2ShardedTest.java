package dev.owlery.engine.checkpoint;

import static org.assertj.core.api.Assertions.assertThat;

import dev.owlery.engine.checkpoint.TorchCheckpointWriter.DictStyle;
import dev.owlery.engine.tensor.DType;
import dev.owlery.engine.tensor.Tensor;
import dev.owlery.engine.testing.Fixtures;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The tiny-owl2 weights (114 F32 tensors) written as the released 7B is laid out (sharded
 * {@code .bin} with an index) and as sharded safetensors, reopened through {@link Checkpoints}:
 * every tensor must come back bit for bit, and F16/BF16 copies must round to nearest even.
 */
class TinyOwl2ShardedTest {

  @TempDir static Path dir;
  private static Path original;

  @BeforeAll
  static void locate() {
    original = Fixtures.tinyOwl2().resolve("model.safetensors");
  }

  private static Path subdir(String name) throws IOException {
    return Files.createDirectories(dir.resolve(name));
  }

  @Test
  void shardedBinWithIndexEqualsTheOriginalBitForBit() throws IOException {
    Path out = subdir("bin-index");
    try (Checkpoint ck = SafetensorsCheckpoint.openFile(original)) {
      TorchCheckpointWriter writer = new TorchCheckpointWriter().dictStyle(DictStyle.PLAIN_DICT);
      ck.names().forEach(n -> writer.add(ck.tensor(n)));
      List<Path> shards = writer.writeSharded(out, 3, true);
      assertThat(shards).hasSize(3);
      try (Checkpoint reopened = Checkpoints.open(out)) {
        assertThat(reopened.location()).isEqualTo(out.resolve("pytorch_model.bin.index.json"));
        assertSameBits(ck, reopened);
      }
    }
  }

  @Test
  void shardedBinWithoutIndexEqualsTheOriginalBitForBit() throws IOException {
    Path out = subdir("bin-glob");
    try (Checkpoint ck = SafetensorsCheckpoint.openFile(original)) {
      TorchCheckpointWriter writer = new TorchCheckpointWriter();
      ck.names().forEach(n -> writer.add(ck.tensor(n)));
      writer.writeSharded(out, 3, false);
      try (Checkpoint reopened = Checkpoints.open(out)) {
        assertThat(reopened.location()).isEqualTo(out);
        assertSameBits(ck, reopened);
      }
    }
  }

  @Test
  void shardedSafetensorsWithIndexEqualsTheOriginalBitForBit() throws IOException {
    Path out = subdir("st-index");
    try (Checkpoint ck = SafetensorsCheckpoint.openFile(original)) {
      SafetensorsWriter writer = new SafetensorsWriter();
      ck.names().forEach(n -> writer.add(ck.tensor(n)));
      // 17.86 MB of data, embeddings and lm_head 8.19 MB each: three files
      assertThat(writer.writeSharded(out, 9_000_000)).hasSize(3);
      try (Checkpoint reopened = Checkpoints.open(out)) {
        assertSameBits(ck, reopened);
      }
    }
  }

  @Test
  void f16AndBf16CopiesRoundToNearestEvenAndAgreeAcrossFormats() throws IOException {
    try (Checkpoint ck = SafetensorsCheckpoint.openFile(original)) {
      for (DType dtype : List.of(DType.F16, DType.BF16)) {
        Path bin = subdir("bin-" + dtype);
        Path st = subdir("st-" + dtype);
        TorchCheckpointWriter torch = new TorchCheckpointWriter();
        SafetensorsWriter safetensors = new SafetensorsWriter();
        for (String n : ck.names()) {
          torch.add(ck.tensor(n), dtype);
          safetensors.add(ck.tensor(n), dtype);
        }
        torch.writeSharded(bin, 3, true);
        safetensors.writeSharded(st, 9_000_000);
        try (Checkpoint fromBin = Checkpoints.open(bin); Checkpoint fromSt = Checkpoints.open(st)) {
          assertSameBits(fromBin, fromSt);
          long checked = 0;
          for (String n : ck.names()) {
            checked += assertNearestEven(ck.tensor(n), fromBin.tensor(n), dtype);
          }
          assertThat(checked).as("elements checked").isGreaterThan(4_000_000L); // the whole 17.9 MB fixture
        }
      }
    }
  }

  private static void assertSameBits(Checkpoint expected, Checkpoint actual) {
    assertThat(actual.names()).containsExactlyInAnyOrderElementsOf(expected.names());
    assertThat(expected.names()).hasSize(114);
    for (String n : expected.names()) {
      Tensor e = expected.tensor(n);
      Tensor a = actual.tensor(n, e.shape());
      assertThat(a.dtype()).as(n).isEqualTo(e.dtype());
      assertThat(a.data().mismatch(e.data())).as(n).isEqualTo(-1L);
    }
  }

  /**
   * Checks each narrowed value is a nearest representable one, and on an exact tie the one with an
   * even last mantissa bit: an independent statement of IEEE round-to-nearest-even.
   */
  private static long assertNearestEven(Tensor wide, Tensor narrow, DType dtype) {
    assertThat(narrow.dtype()).isEqualTo(dtype);
    for (long i = 0; i < wide.numElements(); i++) {
      double x = wide.getFloat(i);
      int bits = narrow.data().getAtIndex(java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED, i) & 0xffff;
      double y = decode(bits, dtype);
      double below = decode(bits - 1, dtype);
      double above = decode(bits + 1, dtype);
      double error = Math.abs(x - y);
      if (error > Math.min(Math.abs(x - below), Math.abs(x - above))
          || ((error == Math.abs(x - below) || error == Math.abs(x - above)) && error > 0 && (bits & 1) != 0)) {
        throw new AssertionError("%s[%d]: %s narrowed to %s (bits 0x%04x), neighbours %s and %s"
            .formatted(wide.name(), i, x, y, bits, below, above));
      }
    }
    return wide.numElements();
  }

  private static double decode(int bits, DType dtype) {
    short b = (short) bits;
    return dtype == DType.F16 ? Float.float16ToFloat(b) : Float.intBitsToFloat((b & 0xffff) << 16);
  }
}
