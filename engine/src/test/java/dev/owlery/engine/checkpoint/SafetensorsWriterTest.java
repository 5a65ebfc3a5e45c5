package dev.owlery.engine.checkpoint;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.owlery.engine.tensor.DType;
import dev.owlery.engine.tensor.Tensor;
import dev.owlery.engine.tensor.WeightFormat;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafetensorsWriterTest {

  @TempDir Path dir;

  @Test
  void writesTheStandardHeaderAndEveryDtype() throws IOException {
    Path file = dir.resolve("out.safetensors");
    MemorySegment raw = MemorySegment.ofArray(new byte[] {1, 2, 3});
    new SafetensorsWriter()
        .add("f32", DType.F32, new long[] {2, 2}, new float[] {1, -2, 3.5f, 1e-40f})
        .add("f16", DType.F16, new long[] {3}, new float[] {1, 65504, -0.5f})
        .add("bf16", DType.BF16, new long[] {2}, new float[] {1, -3e38f})
        .add("i64", DType.I64, new long[] {2}, new long[] {Long.MIN_VALUE, 5})
        .add("i32", DType.I32, new long[] {2}, new long[] {Integer.MAX_VALUE, -1})
        .add("u8", DType.U8, new long[] {3}, raw)
        .write(file);
    byte[] bytes = Files.readAllBytes(file);
    long headerLength = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
    String header = new String(bytes, 8, (int) headerLength, StandardCharsets.UTF_8);
    assertThat(headerLength % 8).isZero();
    assertThat(header).startsWith("{\"__metadata__\":{\"format\":\"pt\"},\"f32\":{\"dtype\":\"F32\",\"shape\":[2,2],"
        + "\"data_offsets\":[0,16]}");
    assertThat(header.strip()).endsWith("}");
    // 16 + 6 + 4 + 16 + 8 + 3 data bytes follow the header
    assertThat(bytes.length).isEqualTo(8 + headerLength + 53);
    try (Checkpoint ck = SafetensorsCheckpoint.openFile(file)) {
      assertThat(ck.tensor("f32", 2, 2).toFloatArray()).containsExactly(1, -2, 3.5f, 1e-40f);
      assertThat(ck.tensor("f16").toFloatArray()).containsExactly(1, 65504, -0.5f);
      assertThat(ck.tensor("bf16").toFloatArray()).containsExactly(1, Float.intBitsToFloat(0xff62_0000)); // -3e38 = 0xff61b1e6 rounds up
      assertThat(ck.tensor("i64").toLongArray()).containsExactly(Long.MIN_VALUE, 5);
      assertThat(ck.tensor("i32").toLongArray()).containsExactly(Integer.MAX_VALUE, -1);
      assertThat(ck.tensor("u8").toLongArray()).containsExactly(1, 2, 3);
    }
  }

  @Test
  void roundsToNearestEvenWhenNarrowing() {
    // ties: 1 + 2^-8 lies halfway between bf16 1.0 (even) and 1 + 2^-7 (odd) -> 1.0;
    // 1 + 3*2^-8 lies halfway between 1 + 2^-7 (odd) and 1 + 2^-6 (even) -> 1 + 2^-6
    assertThat(bf16(1 + 0x1p-8f)).isEqualTo(1f);
    assertThat(bf16(1 + 3 * 0x1p-8f)).isEqualTo(1 + 0x1p-6f);
    assertThat(bf16(1 + 0x1p-8f + 0x1p-20f)).isEqualTo(1 + 0x1p-7f); // just past the tie rounds up
    assertThat(bf16(Float.MAX_VALUE)).isEqualTo(Float.POSITIVE_INFINITY);
    assertThat(bf16(Float.NaN)).isNaN();
    // f16: 1 + 2^-11 -> 1.0, 1 + 3*2^-11 -> 1 + 2^-9, 65520 (the tie above 65504) -> inf
    assertThat(f16(1 + 0x1p-11f)).isEqualTo(1f);
    assertThat(f16(1 + 3 * 0x1p-11f)).isEqualTo(1 + 0x1p-9f);
    assertThat(f16(65519f)).isEqualTo(65504f);
    assertThat(f16(65520f)).isEqualTo(Float.POSITIVE_INFINITY);
    assertThat(f16(0x1p-25f)).isEqualTo(0f); // halfway to the smallest subnormal: even is zero
    assertThat(f16(0x1.8p-24f)).isEqualTo(0x1p-23f);
  }

  private static float bf16(float x) {
    return Float.intBitsToFloat((WeightFormat.toBf16(x) & 0xffff) << 16);
  }

  private static float f16(float x) {
    return Float.float16ToFloat(ElementEncoder.toF16(x));
  }

  @Test
  void convertsTensorsBetweenDtypes() {
    Path file = dir.resolve("out.safetensors");
    MemorySegment values = MemorySegment.ofArray(new float[] {1 + 0x1p-8f, 2, -3});
    Tensor ids = new Tensor("ids", DType.I64, new long[] {2}, MemorySegment.ofArray(new long[] {7, 200}));
    new SafetensorsWriter()
        .add(new Tensor("w.bf16", DType.F32, new long[] {3}, values), DType.BF16)
        .add(new Tensor("w.f16", DType.F32, new long[] {3}, values), DType.F16)
        .add(ids, DType.U8)
        .write(file);
    try (Checkpoint ck = SafetensorsCheckpoint.openFile(file)) {
      assertThat(ck.tensor("w.bf16").dtype()).isEqualTo(DType.BF16);
      assertThat(ck.tensor("w.bf16").toFloatArray()).containsExactly(1, 2, -3);
      assertThat(ck.tensor("w.f16").toFloatArray()).containsExactly(1 + 0x1p-8f, 2, -3); // exact in f16
      assertThat(ck.tensor("ids").dtype()).isEqualTo(DType.U8);
      assertThat(ck.tensor("ids").toLongArray()).containsExactly(7, 200);
    }
    assertThatThrownBy(() -> new SafetensorsWriter().add(ids, DType.F32))
        .hasMessage("tensor 'ids': cannot convert I64 to F32");
  }

  @Test
  void rejectsBadInput() {
    SafetensorsWriter w = new SafetensorsWriter().add("a", DType.F32, new long[] {2}, new float[] {1, 2});
    assertThatThrownBy(() -> w.add("a", DType.F32, new long[] {1}, new float[] {1}))
        .hasMessage("tensor name 'a' is empty, reserved or already added");
    assertThatThrownBy(() -> w.add("b", DType.F32, new long[] {2, 2}, new float[] {1}))
        .hasMessage("tensor 'b': shape [2, 2] needs 4 values, got 1");
    assertThatThrownBy(() -> w.add("c", DType.I32, new long[] {1}, new float[] {1}))
        .hasMessage("tensor 'c': float values cannot be written as I32");
    assertThatThrownBy(() -> new SafetensorsWriter().add("d", DType.I32, new long[] {1}, new long[] {1L << 33})
        .write(dir.resolve("x.safetensors")))
        .hasMessage("tensor 'd': value 8589934592 does not fit I32");
  }

  @Test
  void writesAShardedSetWithAnIndex() throws IOException {
    SafetensorsWriter w = new SafetensorsWriter();
    for (int i = 0; i < 5; i++) {
      float[] values = new float[10];
      Arrays.fill(values, i);
      w.add("layer." + i, DType.F32, new long[] {10}, values);
    }
    List<Path> shards = w.writeSharded(dir, 80); // two 40-byte tensors per file
    assertThat(shards).extracting(p -> p.getFileName().toString()).containsExactly(
        "model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors");
    String index = Files.readString(dir.resolve("model.safetensors.index.json"));
    assertThat(index).contains("\"total_size\" : 200").contains("\"layer.4\" : \"model-00003-of-00003.safetensors\"");
    try (Checkpoint ck = Checkpoints.open(dir)) {
      assertThat(ck.location()).isEqualTo(dir.resolve("model.safetensors.index.json"));
      assertThat(ck.names()).containsExactly("layer.0", "layer.1", "layer.2", "layer.3", "layer.4");
      assertThat(ck.tensor("layer.3").toFloatArray()).containsOnly(3f);
    }
  }
}
