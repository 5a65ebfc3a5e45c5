package dev.owlery.engine.checkpoint;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.owlery.engine.tensor.DType;
import dev.owlery.engine.tensor.Tensor;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafetensorsCheckpointTest {

  @TempDir Path dir;

  /** A safetensors file with the given header JSON (padded to 8) and data bytes. */
  private Path raw(String headerJson, byte[] data) throws IOException {
    byte[] header = (headerJson + " ".repeat((8 - headerJson.length() % 8) % 8)).getBytes(StandardCharsets.UTF_8);
    ByteBuffer b = ByteBuffer.allocate(8 + header.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
    b.putLong(header.length).put(header).put(data);
    Path file = dir.resolve("model.safetensors");
    Files.write(file, b.array());
    return file;
  }

  private static byte[] floats(float... values) {
    ByteBuffer b = ByteBuffer.allocate(4 * values.length).order(ByteOrder.LITTLE_ENDIAN);
    for (float v : values) {
      b.putFloat(v);
    }
    return b.array();
  }

  @Test
  void readsTensorsInPlace() throws IOException {
    Path file = raw("{\"__metadata__\":{\"format\":\"pt\"},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]},"
        + "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", floats(1, 2, 3, 4));
    try (SafetensorsCheckpoint ck = SafetensorsCheckpoint.openFile(file)) {
      assertThat(ck.names()).containsExactly("b", "a");
      assertThat(ck.tensor("a", 2).toFloatArray()).containsExactly(1, 2);
      assertThat(ck.tensor("b").toFloatArray()).containsExactly(3, 4);
      assertThat(ck.tensor("a").data().isMapped()).isTrue();
      assertThat(ck.source("a")).isEqualTo(file);
    }
  }

  @Test
  void truncatedFileIsReported() throws IOException {
    Path file = dir.resolve("model.safetensors");
    Files.write(file, new byte[] {1, 2, 3});
    assertThatThrownBy(() -> SafetensorsCheckpoint.openFile(file))
        .isInstanceOf(CheckpointException.class)
        .hasMessage(file + ": file is truncated: 3 bytes, shorter than the 8-byte header length");
  }

  @Test
  void headerLengthPastTheEndIsReported() throws IOException {
    Path file = raw("{}", new byte[0]);
    byte[] bytes = Files.readAllBytes(file);
    bytes[1] = 0x10; // header length 4104
    Files.write(file, bytes);
    assertThatThrownBy(() -> SafetensorsCheckpoint.openFile(file))
        .hasMessage(file + ": header length 4104 runs past the end of the 16-byte file (truncated or not a safetensors file)");
  }

  @Test
  void hugeOrNegativeHeaderLengthIsReportedNotOverflowed() throws IOException {
    Path file = raw("{}", new byte[0]);
    byte[] bytes = Files.readAllBytes(file);
    bytes[7] = (byte) 0x80; // header length 2^63 + 8 as the format's u64, Long.MIN_VALUE + 8 as a long
    Files.write(file, bytes);
    assertThatThrownBy(() -> SafetensorsCheckpoint.openFile(file))
        .hasMessage(file + ": header length 9223372036854775816 runs past the end of the 16-byte file (truncated or not"
            + " a safetensors file)");
  }

  @Test
  void malformedHeaderJsonIsReported() throws IOException {
    Path file = raw("{\"a\": {\"dtype\": \"F32\",", new byte[0]);
    assertThatThrownBy(() -> SafetensorsCheckpoint.openFile(file))
        .isInstanceOf(CheckpointException.class)
        .hasMessageStartingWith(file + ": malformed header JSON: ");
  }

  @Test
  void duplicateTensorNamesAreReported() throws IOException {
    Path file = raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
        + "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", floats(1, 2));
    assertThatThrownBy(() -> SafetensorsCheckpoint.openFile(file))
        .hasMessageContaining("malformed header JSON: Duplicate field 'a'");
  }

  @Test
  void offsetsOutOfRangeAreReported() throws IOException {
    Path file = raw("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", floats(1, 2, 3));
    assertThatThrownBy(() -> SafetensorsCheckpoint.openFile(file))
        .hasMessage(file + ": tensor 'w': data offsets [0, 16) are out of range: the data section holds 12 bytes (truncated file?)");
  }

  @Test
  void offsetsNotMatchingTheShapeAreReported() throws IOException {
    Path file = raw("{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,12]}}", floats(1, 2, 3, 4));
    assertThatThrownBy(() -> SafetensorsCheckpoint.openFile(file))
        .hasMessage(file + ": tensor 'w': data offsets [0, 12) hold 12 bytes, but F32 [2,2] needs 16");
  }

  @Test
  void overlappingTensorsAreReported() throws IOException {
    Path file = raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
        + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", floats(1, 2, 3));
    assertThatThrownBy(() -> SafetensorsCheckpoint.openFile(file))
        .hasMessage(file + ": tensor 'b': data offsets [4, 12) overlap those of tensor 'a' [0, 8)");
  }

  @Test
  void unknownDtypeIsReported() throws IOException {
    Path file = raw("{\"w\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", new byte[8]);
    assertThatThrownBy(() -> SafetensorsCheckpoint.openFile(file))
        .hasMessage(file + ": tensor 'w': unknown or unsupported dtype \"F64\" (supported: F32, F16, BF16, I64, I32, U8)");
  }

  @Test
  void offsetsTooLargeForALongAreReported() throws IOException {
    Path file = raw("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,99999999999999999999]}}", new byte[8]);
    assertThatThrownBy(() -> SafetensorsCheckpoint.openFile(file))
        .hasMessageContaining("tensor 'w': malformed header JSON: bad data_offsets");
  }

  @Test
  void missingTensorAndWrongShapeAreReported() throws IOException {
    Path file = raw("{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", floats(1, 2, 3, 4));
    try (SafetensorsCheckpoint ck = SafetensorsCheckpoint.openFile(file)) {
      assertThatThrownBy(() -> ck.tensor("model.norm.weight"))
          .isInstanceOf(CheckpointException.class)
          .hasMessage(file + ": tensor 'model.norm.weight': the model needs this tensor but the checkpoint (1 tensors)"
              + " has none of that name");
      assertThatThrownBy(() -> ck.tensor("w", 4, 1))
          .isInstanceOf(CheckpointException.class)
          .hasMessage(file + ": tensor 'w': shape [2, 2] does not match the config, which needs [4, 1]");
    }
  }

  @Test
  void shardedIndexErrorsNameTheFileAndTensor() throws IOException {
    new SafetensorsWriter().add("a", DType.F32, new long[] {1}, new float[] {1}).write(dir.resolve("one.safetensors"));
    Path index = dir.resolve(Checkpoints.SAFETENSORS_INDEX);
    Files.writeString(index, "{\"weight_map\": {\"a\": \"one.safetensors\", \"b\": \"two.safetensors\"}}");
    assertThatThrownBy(() -> SafetensorsCheckpoint.openIndex(index))
        .hasMessage(index + ": tensor 'b': weight_map maps it to 'two.safetensors', which does not exist");
    Files.writeString(index, "{\"weight_map\": {\"a\": \"one.safetensors\", \"b\": \"one.safetensors\"}}");
    assertThatThrownBy(() -> SafetensorsCheckpoint.openIndex(index))
        .hasMessage(dir.resolve("one.safetensors") + ": tensor 'b': the index " + index
            + " maps it to this file, which has no tensor of that name");
    Files.writeString(index, "{\"weight_map\": {\"a\": \"../one.safetensors\"}}");
    assertThatThrownBy(() -> SafetensorsCheckpoint.openIndex(index))
        .hasMessageContaining("which is not a file in the index's directory");
    Files.writeString(index, "{\"metadata\": {}}");
    assertThatThrownBy(() -> SafetensorsCheckpoint.openIndex(index))
        .hasMessage(index + ": the index has no \"weight_map\" object");
  }

  @Test
  void shardsWithoutIndexRejectADuplicatedName() {
    Path one = dir.resolve("model-00001-of-00002.safetensors");
    Path two = dir.resolve("model-00002-of-00002.safetensors");
    new SafetensorsWriter().add("a", DType.F32, new long[] {1}, new float[] {1}).write(one);
    new SafetensorsWriter().add("a", DType.F32, new long[] {1}, new float[] {2}).write(two);
    assertThatThrownBy(() -> Checkpoints.open(dir))
        .hasMessage(two + ": tensor 'a': also in " + one);
  }

  /**
   * A sparse file just over 2 GiB (nothing but the header and the last tensor is written) proves
   * offsets are longs end to end: a U8 tensor spanning the 2 GiB mark and an F32 tensor after it.
   */
  @Test
  void filesOver2GibWork() throws IOException {
    long bigBytes = (1L << 31) + 64;
    String header = ("{\"big\":{\"dtype\":\"U8\",\"shape\":[%d],\"data_offsets\":[0,%d]},"
        + "\"tail\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[%d,%d]}}")
        .formatted(bigBytes, bigBytes, bigBytes, bigBytes + 8);
    header += " ".repeat((8 - header.length() % 8) % 8);
    Path file = dir.resolve("big.safetensors");
    long dataStart = 8 + header.length();
    try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
      f.setLength(dataStart + bigBytes + 8);
      ByteBuffer head = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(header.length());
      f.write(head.array());
      f.write(header.getBytes(StandardCharsets.US_ASCII));
      f.seek(dataStart + bigBytes - 1);
      f.write(7); // last byte of "big"
      f.write(floats(1.5f, -2.25f));
    }
    try (Checkpoint ck = SafetensorsCheckpoint.openFile(file)) {
      Tensor big = ck.tensor("big", bigBytes);
      assertThat(big.getLong(bigBytes - 1)).isEqualTo(7);
      assertThat(big.getLong(1L << 31)).isZero();
      assertThat(ck.tensor("tail", 2).toFloatArray()).containsExactly(1.5f, -2.25f);
    } finally {
      Files.delete(file);
    }
  }
}
