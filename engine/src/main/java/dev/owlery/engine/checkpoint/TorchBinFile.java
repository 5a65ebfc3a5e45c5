package dev.owlery.engine.checkpoint;

import dev.owlery.engine.tensor.DType;
import dev.owlery.engine.tensor.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * One PyTorch {@code .bin} file as {@code torch.save} writes it (spec §8): a zip of STORED entries,
 * {@code <prefix>/data.pkl} (a restricted pickle of the state dict) and the storages
 * {@code <prefix>/data/<key>}. Contiguous tensors are slices of the file mapping; strided views are
 * copied once into the checkpoint's arena. Non-zip files go to {@link TorchLegacyFile}.
 */
final class TorchBinFile {

  private static final String DATA_PKL = "data.pkl";

  private TorchBinFile() {}

  /** The tensors of the mapped file {@code file}, by state-dict key, in pickle order. */
  static Map<String, Tensor> read(Path path, MemorySegment file, Arena arena) {
    if (!ZipDirectory.looksLikeZip(file)) {
      return TorchLegacyFile.read(path, file, arena);
    }
    Map<String, ZipDirectory.Entry> entries = ZipDirectory.read(path, file);
    ZipDirectory.Entry pickle = null;
    for (ZipDirectory.Entry e : entries.values()) {
      if (e.name().equals(DATA_PKL) || e.name().endsWith("/" + DATA_PKL)) {
        if (pickle != null) {
          throw new CheckpointException(path, null,
              "two pickles in one archive: '%s' and '%s'".formatted(pickle.name(), e.name()));
        }
        pickle = e;
      }
    }
    if (pickle == null) {
      throw new CheckpointException(path, null,
          "no '<prefix>/data.pkl' entry among the %d zip entries: not a torch.save file".formatted(entries.size()));
    }
    String prefix = pickle.name().substring(0, pickle.name().length() - DATA_PKL.length());
    Object root = new RestrictedUnpickler(path, pickle.name(), file.asSlice(pickle.dataOffset(), pickle.size()))
        .load();
    Map<String, Tensor> tensors = new LinkedHashMap<>();
    for (Map.Entry<String, TorchTensorRef> e : stateDict(path, root).entrySet()) {
      TorchStorageRef storage = e.getValue().storage();
      String entryName = prefix + "data/" + storage.key();
      ZipDirectory.Entry entry = entries.get(entryName);
      if (entry == null) {
        throw new CheckpointException(path, e.getKey(), "its storage entry '%s' is missing".formatted(entryName));
      }
      MemorySegment bytes = storageBytes(path, e.getKey(), entryName, storage, file.asSlice(entry.dataOffset(), entry.size()));
      tensors.put(e.getKey(), view(path, e.getKey(), e.getValue(), bytes, file.byteSize(), arena));
    }
    return tensors;
  }

  /** Checks the unpickled root is a {@code dict[str, tensor]} and returns it typed. */
  static Map<String, TorchTensorRef> stateDict(Path path, Object root) {
    if (!(root instanceof Map<?, ?> map)) {
      throw new CheckpointException(path, null, "the pickle holds a %s, not a state dict"
          .formatted(root == null ? "None" : root.getClass().getSimpleName()));
    }
    Map<String, TorchTensorRef> out = new LinkedHashMap<>();
    for (Map.Entry<?, ?> e : map.entrySet()) {
      if (!(e.getKey() instanceof String key)) {
        throw new CheckpointException(path, null, "state dict key %s is not a string".formatted(e.getKey()));
      }
      if (!(e.getValue() instanceof TorchTensorRef ref)) {
        throw new CheckpointException(path, key, "the state dict value is not a tensor");
      }
      out.put(key, ref);
    }
    return out;
  }

  /**
   * The storage's bytes from the record holding it, checked to be as long as its persistent id
   * says (a legacy view starts {@code elementOffset} elements in).
   */
  static MemorySegment storageBytes(
      Path path, String tensorName, String recordName, TorchStorageRef storage, MemorySegment record) {
    int width = storage.dtype().byteSize();
    long start;
    long length;
    try {
      start = Math.multiplyExact(storage.elementOffset(), width);
      length = Math.multiplyExact(storage.numel(), width);
    } catch (ArithmeticException e) {
      throw new CheckpointException(path, tensorName, "storage '%s' size overflows".formatted(recordName));
    }
    if (start > record.byteSize() || length > record.byteSize() - start) {
      throw new CheckpointException(path, tensorName,
          "storage '%s' holds %d bytes, shorter than the %d elements of %s (%d bytes) it should hold (truncated file?)"
              .formatted(recordName, record.byteSize(), storage.numel(), storage.dtype(), start + length));
    }
    return record.asSlice(start, length);
  }

  /**
   * The tensor {@code ref} describes over its storage's bytes: a slice in place when contiguous,
   * otherwise a row-major copy allocated in {@code arena}; {@code fileBytes} (the whole file's size)
   * bounds the copy of a view that repeats elements.
   */
  static Tensor view(Path path, String name, TorchTensorRef ref, MemorySegment storage, long fileBytes, Arena arena) {
    DType dtype = ref.storage().dtype();
    int width = dtype.byteSize();
    long[] size = ref.size();
    long[] stride = ref.stride();
    long numel;
    long lastElement = ref.storageOffset();
    try {
      numel = Tensor.numElements(size);
      Math.multiplyExact(numel, width);
      for (int d = 0; d < size.length; d++) {
        if (size[d] < 0 || stride[d] < 0) {
          throw new CheckpointException(path, name, "negative size %s or stride %s"
              .formatted(Arrays.toString(size), Arrays.toString(stride)));
        }
        if (size[d] > 0) {
          lastElement = Math.addExact(lastElement, Math.multiplyExact(size[d] - 1, stride[d]));
        }
      }
    } catch (ArithmeticException e) {
      throw new CheckpointException(path, name, "size %s with stride %s overflows"
          .formatted(Arrays.toString(size), Arrays.toString(stride)));
    }
    long storageElements = storage.byteSize() / width;
    if (ref.storageOffset() < 0 || (numel > 0 && lastElement >= storageElements)) {
      throw new CheckpointException(path, name,
          "size %s, stride %s at storage offset %d reaches element %d, but its storage holds %d elements"
              .formatted(Arrays.toString(size), Arrays.toString(stride), ref.storageOffset(), lastElement,
                  storageElements));
    }
    // A stride of 0 repeats elements (an expand()ed view), so its copy may outgrow its storage: a few
    // bytes of pickle could claim gigabytes. Such a copy may be at most as large as the file itself.
    if (numel > storageElements && numel * width > fileBytes) {
      throw new CheckpointException(path, name,
          "size %s with stride %s repeats its %d-element storage into %d bytes, more than the %d-byte file; save tensor.contiguous() instead"
              .formatted(Arrays.toString(size), Arrays.toString(stride), storageElements, numel * width, fileBytes));
    }
    if (numel == 0) {
      return new Tensor(name, dtype, size, storage.asSlice(0, 0));
    }
    if (isContiguous(size, stride)) {
      return new Tensor(name, dtype, size, storage.asSlice(ref.storageOffset() * width, numel * width));
    }
    MemorySegment copy = arena.allocate(numel * width, 64);
    copyStrided(storage, ref.storageOffset(), size, stride, copy, width);
    return new Tensor(name, dtype, size, copy.asReadOnly());
  }

  private static boolean isContiguous(long[] size, long[] stride) {
    long expected = 1;
    for (int d = size.length - 1; d >= 0; d--) {
      if (size[d] != 1 && stride[d] != expected) {
        return false;
      }
      expected *= size[d];
    }
    return true;
  }

  /** Copies the strided view element by element, in row-major order, into {@code out}. */
  private static void copyStrided(
      MemorySegment src, long offset, long[] size, long[] stride, MemorySegment out, int width) {
    int rank = size.length;
    long[] index = new long[rank];
    long source = offset;
    long outBytes = out.byteSize();
    for (long target = 0; target < outBytes; target += width) {
      MemorySegment.copy(src, source * width, out, target, width);
      // odometer: advance the last dimension, carrying into earlier ones
      for (int d = rank - 1; d >= 0; d--) {
        index[d]++;
        source += stride[d];
        if (index[d] < size[d]) {
          break;
        }
        source -= index[d] * stride[d];
        index[d] = 0;
      }
    }
  }
}
