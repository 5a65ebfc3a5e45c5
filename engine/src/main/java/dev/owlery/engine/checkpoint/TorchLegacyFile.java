package dev.owlery.engine.checkpoint;

import dev.owlery.engine.tensor.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.math.BigInteger;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A PyTorch file in the legacy (pre-1.6, non-zip) format: pickles of the magic number, the
 * protocol version (1001) and sys_info, then the state dict, then the list of storage keys,
 * followed by each storage as an 8-byte little-endian element count and its raw bytes.
 */
final class TorchLegacyFile {

  private static final BigInteger MAGIC_NUMBER = new BigInteger("1950a86a20f9469cfc6c", 16);
  private static final long PROTOCOL_VERSION = 1001;
  private static final ValueLayout.OfLong I64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  private TorchLegacyFile() {}

  static Map<String, Tensor> read(Path path, MemorySegment file, Arena arena) {
    if (file.byteSize() < 2 || file.get(ValueLayout.JAVA_BYTE, 0) != (byte) 0x80) {
      throw new CheckpointException(path, null,
          "not a torch.save file: neither a zip archive nor the legacy pickle format");
    }
    RestrictedUnpickler pickles = new RestrictedUnpickler(path, "legacy pickle", file);
    Object magic = pickles.load();
    if (!MAGIC_NUMBER.equals(magic)) {
      throw new CheckpointException(path, null,
          "not a torch.save file: the legacy format starts with magic number 0x%s, found %s"
              .formatted(MAGIC_NUMBER.toString(16), RestrictedUnpickler.describe(magic)));
    }
    Object version = pickles.load();
    if (!Long.valueOf(PROTOCOL_VERSION).equals(version)) {
      throw new CheckpointException(path, null,
          "legacy torch.save protocol version %s is not supported (only %d)"
              .formatted(RestrictedUnpickler.describe(version), PROTOCOL_VERSION));
    }
    if (pickles.load() instanceof Map<?, ?> sysInfo && Boolean.FALSE.equals(sysInfo.get("little_endian"))) {
      throw new CheckpointException(path, null, "the file was written on a big-endian machine");
    }
    Map<String, TorchTensorRef> refs = TorchBinFile.stateDict(path, pickles.load());
    if (!(pickles.load() instanceof List<?> keys)) {
      throw new CheckpointException(path, null, "the storage key list after the state dict is missing");
    }
    Map<String, TorchStorageRef> storagesByKey = new HashMap<>();
    for (TorchTensorRef ref : refs.values()) {
      storagesByKey.putIfAbsent(ref.storage().key(), ref.storage());
    }
    Map<String, MemorySegment> records = records(path, file, pickles.position(), keys, storagesByKey);
    Map<String, Tensor> tensors = new LinkedHashMap<>();
    for (Map.Entry<String, TorchTensorRef> e : refs.entrySet()) {
      TorchStorageRef storage = e.getValue().storage();
      MemorySegment record = records.get(storage.key());
      if (record == null) {
        throw new CheckpointException(path, e.getKey(), "storage '%s' is not in the file".formatted(storage.key()));
      }
      MemorySegment bytes = TorchBinFile.storageBytes(path, e.getKey(), storage.key(), storage, record);
      tensors.put(e.getKey(), TorchBinFile.view(path, e.getKey(), e.getValue(), bytes, file.byteSize(), arena));
    }
    return tensors;
  }

  /** The raw bytes of each storage record, in key-list order, starting at {@code at}. */
  private static Map<String, MemorySegment> records(
      Path path, MemorySegment file, long at, List<?> keys, Map<String, TorchStorageRef> storages) {
    Map<String, MemorySegment> records = new HashMap<>();
    for (Object k : keys) {
      if (!(k instanceof String key)) {
        throw new CheckpointException(path, null,
            "the storage key list holds a %s, not a key string".formatted(RestrictedUnpickler.describe(k)));
      }
      TorchStorageRef storage = storages.get(key);
      if (file.byteSize() - at < 8) {
        throw new CheckpointException(path, null, "storage '%s' is cut off (truncated file?)".formatted(key));
      }
      long numel = file.get(I64, at);
      if (storage == null) {
        throw new CheckpointException(path, null,
            "storage '%s' is listed but no tensor refers to it, so its element size is unknown".formatted(key));
      }
      int width = storage.dtype().byteSize();
      if (numel < 0 || numel > (file.byteSize() - at - 8) / width) {
        throw new CheckpointException(path, null,
            "storage '%s' claims %d elements, more than the %d bytes left in the file (truncated file?)"
                .formatted(key, numel, file.byteSize() - at - 8));
      }
      records.put(key, file.asSlice(at + 8, numel * width));
      at += 8 + numel * width;
    }
    return records;
  }
}
