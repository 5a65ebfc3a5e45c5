package dev.owlery.engine.checkpoint;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.owlery.engine.tensor.DType;
import dev.owlery.engine.tensor.Tensor;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Writes {@code .safetensors} files: 8-byte little-endian header length, the JSON header (with
 * {@code __metadata__ {"format": "pt"}}) padded with spaces to a multiple of 8, then each tensor's
 * little-endian bytes in the order added. Tensors are collected first (by reference, not copied),
 * then streamed to disk through a small buffer, converting to each tensor's dtype on the way.
 * {@link #writeSharded} splits them over several files plus {@code model.safetensors.index.json}.
 */
public final class SafetensorsWriter {

  private static final ObjectMapper JSON = new ObjectMapper();
  private static final int BUFFER_BYTES = 1 << 20;

  /** Where a tensor's elements come from. */
  private sealed interface Source {
    /** Encodes elements {@code [from, from + count)} as {@code dtype} into {@code out} from its start. */
    void encode(long from, int count, DType dtype, MemorySegment out);
  }

  private record Floats(float[] values) implements Source {
    @Override
    public void encode(long from, int count, DType dtype, MemorySegment out) {
      for (int i = 0; i < count; i++) {
        ElementEncoder.putFloat(out, i, dtype, values[(int) from + i]);
      }
    }
  }

  private record Longs(String name, long[] values) implements Source {
    @Override
    public void encode(long from, int count, DType dtype, MemorySegment out) {
      for (int i = 0; i < count; i++) {
        ElementEncoder.putLong(out, i, dtype, values[(int) from + i], name);
      }
    }
  }

  /** Elements of a tensor, copied as bytes when the dtype matches, else converted. */
  private record OfTensor(Tensor tensor) implements Source {
    @Override
    public void encode(long from, int count, DType dtype, MemorySegment out) {
      if (dtype == tensor.dtype()) {
        MemorySegment.copy(tensor.data(), from * dtype.byteSize(), out, 0, (long) count * dtype.byteSize());
        return;
      }
      for (int i = 0; i < count; i++) {
        ElementEncoder.putElement(tensor, from + i, out, i, dtype);
      }
    }
  }

  private record Entry(String name, DType dtype, long[] shape, Source source) {
    long numElements() {
      return Tensor.numElements(shape);
    }

    long byteSize() {
      return Math.multiplyExact(numElements(), dtype.byteSize());
    }
  }

  private final List<Entry> entries = new ArrayList<>();
  private final Set<String> names = new HashSet<>();
  private final Map<String, String> metadata = new LinkedHashMap<>(Map.of("format", "pt"));

  /** Adds a floating tensor (F32, F16 or BF16) from row-major values. */
  public SafetensorsWriter add(String name, DType dtype, long[] shape, float[] values) {
    requireFloating(name, dtype);
    return add(new Entry(name, dtype, shape.clone(), new Floats(values)), values.length);
  }

  /** Adds an integer tensor (I64, I32 or U8) from row-major values; each must fit the dtype. */
  public SafetensorsWriter add(String name, DType dtype, long[] shape, long[] values) {
    if (dtype.isFloating()) {
      throw new IllegalArgumentException("tensor '%s': long values cannot be written as %s".formatted(name, dtype));
    }
    return add(new Entry(name, dtype, shape.clone(), new Longs(name, values)), values.length);
  }

  /** Adds a tensor whose little-endian bytes of {@code dtype} are already in {@code bytes}. */
  public SafetensorsWriter add(String name, DType dtype, long[] shape, MemorySegment bytes) {
    return add(new Tensor(name, dtype, shape, bytes));
  }

  /** Adds a tensor as it is (same name, dtype and shape). */
  public SafetensorsWriter add(Tensor tensor) {
    return add(tensor, tensor.dtype());
  }

  /** Adds a tensor converted to {@code dtype}: between float types, or between integer types. */
  public SafetensorsWriter add(Tensor tensor, DType dtype) {
    if (tensor.dtype().isFloating() != dtype.isFloating()) {
      throw new IllegalArgumentException(
          "tensor '%s': cannot convert %s to %s".formatted(tensor.name(), tensor.dtype(), dtype));
    }
    return add(new Entry(tensor.name(), dtype, tensor.shape(), new OfTensor(tensor)), tensor.numElements());
  }

  /** Adds a {@code __metadata__} string entry ({@code format: pt} is always there). */
  public SafetensorsWriter metadata(String key, String value) {
    metadata.put(key, value);
    return this;
  }

  /** Writes every tensor added to one file. */
  public void write(Path file) {
    writeFile(file, entries);
  }

  /**
   * Writes the tensors over as few files as keep each under {@code maxShardBytes} of data (a larger
   * tensor gets a file of its own), named {@code model-00001-of-0000N.safetensors} in {@code dir},
   * plus {@code model.safetensors.index.json} mapping each name to its file.
   *
   * @return the shard files written, in order
   */
  public List<Path> writeSharded(Path dir, long maxShardBytes) {
    List<List<Entry>> shards = new ArrayList<>();
    long shardBytes = 0;
    for (Entry e : entries) {
      if (shards.isEmpty() || (shardBytes > 0 && shardBytes + e.byteSize() > maxShardBytes)) {
        shards.add(new ArrayList<>());
        shardBytes = 0;
      }
      shards.getLast().add(e);
      shardBytes += e.byteSize();
    }
    ObjectNode index = JSON.createObjectNode();
    ObjectNode weightMap = JSON.createObjectNode();
    long totalSize = 0;
    List<Path> files = new ArrayList<>();
    for (int i = 0; i < shards.size(); i++) {
      String fileName = "model-%05d-of-%05d.safetensors".formatted(i + 1, shards.size());
      writeFile(dir.resolve(fileName), shards.get(i));
      files.add(dir.resolve(fileName));
      for (Entry e : shards.get(i)) {
        weightMap.put(e.name(), fileName);
        totalSize += e.byteSize();
      }
    }
    index.putObject("metadata").put("total_size", totalSize);
    index.set("weight_map", weightMap);
    try {
      Files.writeString(dir.resolve(Checkpoints.SAFETENSORS_INDEX), JSON.writerWithDefaultPrettyPrinter()
          .writeValueAsString(index));
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + dir.resolve(Checkpoints.SAFETENSORS_INDEX) + ": " + e, e);
    }
    return files;
  }

  private SafetensorsWriter add(Entry e, long valueCount) {
    if (e.name().isEmpty() || e.name().equals("__metadata__") || !names.add(e.name())) {
      throw new IllegalArgumentException("tensor name '%s' is empty, reserved or already added".formatted(e.name()));
    }
    if (e.numElements() != valueCount) {
      names.remove(e.name());
      throw new IllegalArgumentException("tensor '%s': shape %s needs %d values, got %d"
          .formatted(e.name(), Arrays.toString(e.shape()), e.numElements(), valueCount));
    }
    entries.add(e);
    return this;
  }

  private static void requireFloating(String name, DType dtype) {
    if (!dtype.isFloating()) {
      throw new IllegalArgumentException("tensor '%s': float values cannot be written as %s".formatted(name, dtype));
    }
  }

  private byte[] header(List<Entry> fileEntries) {
    ObjectNode header = JSON.createObjectNode();
    ObjectNode meta = header.putObject("__metadata__");
    metadata.forEach(meta::put);
    long offset = 0;
    for (Entry e : fileEntries) {
      ObjectNode info = header.putObject(e.name());
      info.put("dtype", e.dtype().safetensorsName());
      ArrayNode shape = info.putArray("shape");
      for (long d : e.shape()) {
        shape.add(d);
      }
      info.putArray("data_offsets").add(offset).add(offset + e.byteSize());
      offset += e.byteSize();
    }
    StringBuilder json = new StringBuilder(header.toString());
    int length = json.toString().getBytes(StandardCharsets.UTF_8).length;
    json.append(" ".repeat((8 - length % 8) % 8));
    return json.toString().getBytes(StandardCharsets.UTF_8);
  }

  private void writeFile(Path file, List<Entry> fileEntries) {
    byte[] header = header(fileEntries);
    ByteBuffer buffer = ByteBuffer.allocateDirect(BUFFER_BYTES).order(ByteOrder.LITTLE_ENDIAN);
    MemorySegment staging = MemorySegment.ofBuffer(buffer);
    try (FileChannel out = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
        StandardOpenOption.TRUNCATE_EXISTING)) {
      ByteBuffer head = ByteBuffer.allocate(8 + header.length).order(ByteOrder.LITTLE_ENDIAN);
      head.putLong(header.length).put(header).flip();
      writeFully(out, head);
      for (Entry e : fileEntries) {
        int width = e.dtype().byteSize();
        int perChunk = BUFFER_BYTES / width;
        for (long from = 0; from < e.numElements(); from += perChunk) {
          int count = (int) Math.min(perChunk, e.numElements() - from);
          e.source().encode(from, count, e.dtype(), staging);
          buffer.clear().limit(count * width);
          writeFully(out, buffer);
        }
      }
    } catch (IOException ex) {
      throw new UncheckedIOException("cannot write safetensors file " + file + ": " + ex, ex);
    }
  }

  private static void writeFully(FileChannel out, ByteBuffer bytes) throws IOException {
    while (bytes.hasRemaining()) {
      out.write(bytes);
    }
  }
}
