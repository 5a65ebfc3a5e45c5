package dev.owlery.engine.checkpoint;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import dev.owlery.engine.tensor.DType;
import dev.owlery.engine.tensor.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The tensors of one memory-mapped {@code .safetensors} file: 8-byte little-endian header length N,
 * N bytes of JSON {@code {name: {dtype, shape, data_offsets}}}, then the raw data (spec §8). Tensors
 * are slices of the file's mapping; offsets are longs throughout, so files over 2 GiB work.
 */
final class SafetensorsFile {

  private static final ObjectMapper JSON =
      new ObjectMapper().enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);
  /** The safetensors format's own limit on the header. */
  private static final long MAX_HEADER_BYTES = 100L * 1024 * 1024;

  private SafetensorsFile() {}

  /** The tensors of the mapped file {@code file}, in header order; {@code arena} is not needed. */
  static Map<String, Tensor> read(Path path, MemorySegment file, Arena arena) {
    return parse(path, file);
  }

  private static Map<String, Tensor> parse(Path path, MemorySegment file) {
    long fileSize = file.byteSize();
    if (fileSize < 8) {
      throw new CheckpointException(path, null,
          "file is truncated: %d bytes, shorter than the 8-byte header length".formatted(fileSize));
    }
    long headerLength = file.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0);
    if (headerLength < 2 || headerLength > fileSize - 8) {
      // the format's u64: a length past 2^63 reads negative as a Java long, and is said unsigned
      throw new CheckpointException(path, null,
          "header length %s runs past the end of the %d-byte file (truncated or not a safetensors file)"
              .formatted(Long.toUnsignedString(headerLength), fileSize));
    }
    if (headerLength > MAX_HEADER_BYTES) {
      throw new CheckpointException(path, null,
          "header length %d is over the format's limit of %d bytes".formatted(headerLength, MAX_HEADER_BYTES));
    }
    byte[] headerBytes = file.asSlice(8, headerLength).toArray(ValueLayout.JAVA_BYTE);
    JsonNode header;
    try {
      header = JSON.readTree(headerBytes);
    } catch (IOException e) {
      throw new CheckpointException(path, null, "malformed header JSON: " + (e instanceof JacksonException j
          ? j.getOriginalMessage() : e.getMessage()), e);
    }
    if (header == null || !header.isObject()) {
      throw new CheckpointException(path, null, "malformed header JSON: the header is not a JSON object");
    }
    long dataStart = 8 + headerLength;
    long dataSize = fileSize - dataStart;
    Map<String, Tensor> tensors = new LinkedHashMap<>();
    for (Map.Entry<String, JsonNode> entry : header.properties()) {
      String name = entry.getKey();
      if (name.equals("__metadata__")) {
        continue;
      }
      tensors.put(name, parseTensor(path, name, entry.getValue(), file, dataStart, dataSize));
    }
    checkNoOverlap(path, tensors, file.address() + dataStart);
    return tensors;
  }

  private static Tensor parseTensor(
      Path path, String name, JsonNode info, MemorySegment file, long dataStart, long dataSize) {
    if (!info.isObject()) {
      throw new CheckpointException(path, name, "malformed header JSON: the entry is not an object");
    }
    JsonNode dtypeNode = info.get("dtype");
    JsonNode shapeNode = info.get("shape");
    JsonNode offsetsNode = info.get("data_offsets");
    if (dtypeNode == null || !dtypeNode.isTextual() || shapeNode == null || !shapeNode.isArray()
        || offsetsNode == null || !offsetsNode.isArray() || offsetsNode.size() != 2) {
      throw new CheckpointException(path, name,
          "malformed header JSON: needs \"dtype\" (string), \"shape\" (array) and \"data_offsets\" ([begin, end])");
    }
    DType dtype = DType.fromSafetensorsName(dtypeNode.asText());
    if (dtype == null) {
      throw new CheckpointException(path, name,
          "unknown or unsupported dtype \"%s\" (supported: F32, F16, BF16, I64, I32, U8)".formatted(dtypeNode.asText()));
    }
    long[] shape = new long[shapeNode.size()];
    for (int i = 0; i < shape.length; i++) {
      JsonNode d = shapeNode.get(i);
      if (!d.isIntegralNumber() || !d.canConvertToLong() || d.asLong() < 0) {
        throw new CheckpointException(path, name, "malformed header JSON: bad shape " + shapeNode);
      }
      shape[i] = d.asLong();
    }
    JsonNode beginNode = offsetsNode.get(0);
    JsonNode endNode = offsetsNode.get(1);
    if (!beginNode.isIntegralNumber() || !endNode.isIntegralNumber()
        || !beginNode.canConvertToLong() || !endNode.canConvertToLong()) {
      throw new CheckpointException(path, name, "malformed header JSON: bad data_offsets " + offsetsNode);
    }
    long begin = beginNode.asLong();
    long end = endNode.asLong();
    if (begin < 0 || end < begin || end > dataSize) {
      throw new CheckpointException(path, name,
          "data offsets [%d, %d) are out of range: the data section holds %d bytes (truncated file?)"
              .formatted(begin, end, dataSize));
    }
    long expected;
    try {
      expected = Math.multiplyExact(Tensor.numElements(shape), dtype.byteSize());
    } catch (ArithmeticException e) {
      throw new CheckpointException(path, name, "shape " + shapeNode + " overflows");
    }
    if (end - begin != expected) {
      throw new CheckpointException(path, name,
          "data offsets [%d, %d) hold %d bytes, but %s %s needs %d"
              .formatted(begin, end, end - begin, dtype, shapeNode, expected));
    }
    return new Tensor(name, dtype, shape, file.asSlice(dataStart + begin, expected));
  }

  /** Fails when two tensors share bytes; offsets in the message are data_offsets as in the header. */
  private static void checkNoOverlap(Path path, Map<String, Tensor> tensors, long dataAddress) {
    record Span(String name, long begin, long end) {}
    List<Span> spans = new ArrayList<>();
    for (Tensor t : tensors.values()) {
      if (t.data().byteSize() > 0) {
        long begin = t.data().address() - dataAddress;
        spans.add(new Span(t.name(), begin, begin + t.data().byteSize()));
      }
    }
    spans.sort(Comparator.comparingLong(Span::begin));
    for (int i = 1; i < spans.size(); i++) {
      Span prev = spans.get(i - 1);
      Span cur = spans.get(i);
      if (cur.begin() < prev.end()) {
        throw new CheckpointException(path, cur.name(),
            "data offsets [%d, %d) overlap those of tensor '%s' [%d, %d)"
                .formatted(cur.begin(), cur.end(), prev.name(), prev.begin(), prev.end()));
      }
    }
  }
}
