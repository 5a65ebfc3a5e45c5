package dev.owlery.engine.checkpoint;

import static org.assertj.core.api.Assertions.assertThat;

import dev.owlery.engine.tensor.DType;
import dev.owlery.engine.tensor.Tensor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import java.util.function.Function;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Damaged files (seeded random truncations and byte flips of valid ones) either still open or fail
 * with a {@link CheckpointException}: never an IndexOutOfBoundsException, ClassCastException,
 * ArithmeticException or other accident of parsing.
 */
class CorruptFileTest {

  private static final int TRIALS = 150;

  @TempDir Path dir;

  private static TorchCheckpointWriter sample() {
    return new TorchCheckpointWriter()
        .dictStyle(TorchCheckpointWriter.DictStyle.STATE_DICT)
        .addView("a", TorchCheckpointWriter.storage(DType.F32, new float[] {0, 1, 2, 3, 4, 5}), 0,
            new long[] {3, 2}, new long[] {1, 3})
        .addView("b", TorchCheckpointWriter.storage(DType.I64, new long[] {1, 2}), 1, new long[] {1}, new long[] {1});
  }

  @Test
  void damagedBinFilesFailCleanly() throws IOException {
    Path good = dir.resolve("good.bin");
    sample().write(good);
    assertCleanFailures(Files.readAllBytes(good), TorchCheckpoint::openFile, new Random(1));
  }

  @Test
  void damagedZip64BinFilesFailCleanly() throws IOException {
    Path good = dir.resolve("good.bin");
    sample().zip64(true).write(good);
    assertCleanFailures(Files.readAllBytes(good), TorchCheckpoint::openFile, new Random(2));
  }

  @Test
  void damagedLegacyBinFilesFailCleanly() throws IOException {
    Path good = dir.resolve("good.bin");
    sample().writeLegacy(good);
    assertCleanFailures(Files.readAllBytes(good), TorchCheckpoint::openFile, new Random(3));
  }

  @Test
  void damagedSafetensorsFilesFailCleanly() throws IOException {
    Path good = dir.resolve("good.safetensors");
    new SafetensorsWriter()
        .add("a", DType.F32, new long[] {2, 3}, new float[] {0, 1, 2, 3, 4, 5})
        .add("b", DType.I64, new long[] {1}, new long[] {9})
        .write(good);
    assertCleanFailures(Files.readAllBytes(good), SafetensorsCheckpoint::openFile, new Random(4));
  }

  private void assertCleanFailures(byte[] good, Function<Path, Checkpoint> open, Random random) throws IOException {
    Path file = dir.resolve("damaged.bin");
    int opened = 0;
    int rejected = 0;
    for (int trial = 0; trial < TRIALS; trial++) {
      byte[] bytes = trial % 4 == 0
          ? Arrays.copyOf(good, random.nextInt(good.length))
          : good.clone();
      if (trial % 4 != 0) {
        for (int flips = 1 + random.nextInt(3); flips > 0; flips--) {
          bytes[random.nextInt(bytes.length)] = (byte) random.nextInt(256);
        }
      }
      Files.write(file, bytes);
      try (Checkpoint ck = open.apply(file)) {
        for (String name : ck.names()) {
          Tensor t = ck.tensor(name);
          for (long i = 0; i < t.numElements(); i++) {
            t.data().get(java.lang.foreign.ValueLayout.JAVA_BYTE, i * t.dtype().byteSize());
          }
        }
        opened++;
      } catch (CheckpointException e) {
        assertThat(e.getMessage()).startsWith(file.toString());
        rejected++;
      } catch (RuntimeException e) {
        throw new AssertionError("trial %d: %s escaped for bytes %s".formatted(trial, e, Arrays.toString(bytes)), e);
      }
    }
    assertThat(opened + rejected).isEqualTo(TRIALS);
    assertThat(rejected).isPositive();
  }
}
