package dev.owlery.engine.checkpoint;

import dev.owlery.engine.tensor.DType;
import dev.owlery.engine.tensor.Tensor;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.math.BigInteger;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Test-only writer of the files {@code torch.save(state_dict, f)} produces, byte layout included:
 * a zip of STORED entries ({@code <stem>/data.pkl}, {@code <stem>/data/<key>}, {@code <stem>/version})
 * with data aligned to 64 bytes by an "FB" extra field, the state dict pickled with protocol 2 as
 * CPython does (an OrderedDict of {@code torch._utils._rebuild_tensor_v2} calls, storages as
 * persistent ids); optionally zip64 records, or the legacy non-zip format.
 */
public final class TorchCheckpointWriter {

  /** How the top-level dict is pickled. */
  enum DictStyle {
    /** {@code {}}: what HuggingFace's sharding and the mPLUG-Owl2 converter save. */
    PLAIN_DICT,
    /** {@code collections.OrderedDict()}. */
    ORDERED_DICT,
    /** {@code module.state_dict()}: an OrderedDict with its {@code _metadata} attribute (BUILD). */
    STATE_DICT
  }

  /** The bytes of one storage (several views may share it). */
  record Storage(DType dtype, byte[] bytes) {
    long numel() {
      return bytes.length / dtype.byteSize();
    }
  }

  /** One state-dict entry: a view of a storage. */
  record View(String name, Storage storage, long offset, long[] size, long[] stride) {}

  private final List<View> views = new ArrayList<>();
  private DictStyle dictStyle = DictStyle.ORDERED_DICT;
  private boolean zip64;
  private String prefix;

  TorchCheckpointWriter dictStyle(DictStyle style) {
    this.dictStyle = style;
    return this;
  }

  /** Writes zip64 records (extended info, zip64 end of central directory) even for small files. */
  TorchCheckpointWriter zip64(boolean on) {
    this.zip64 = on;
    return this;
  }

  /** The archive folder name; by default the file name without its extension, as torch.save does. */
  TorchCheckpointWriter prefix(String archivePrefix) {
    this.prefix = archivePrefix;
    return this;
  }

  /** Adds a tensor as a contiguous storage of its own, in its own dtype. */
  public TorchCheckpointWriter add(Tensor tensor) {
    return add(tensor, tensor.dtype());
  }

  /** Adds a tensor converted to {@code dtype} (F16/BF16 round to nearest even). */
  public TorchCheckpointWriter add(Tensor tensor, DType dtype) {
    MemorySegment out = MemorySegment.ofArray(new byte[Math.toIntExact(tensor.numElements() * dtype.byteSize())]);
    for (long i = 0; i < tensor.numElements(); i++) {
      ElementEncoder.putElement(tensor, i, out, i, dtype);
    }
    long[] shape = tensor.shape();
    return addView(tensor.name(), new Storage(dtype, out.toArray(ValueLayout.JAVA_BYTE)), 0, shape, contiguousStride(shape));
  }

  TorchCheckpointWriter addView(String name, Storage storage, long offset, long[] size, long[] stride) {
    views.add(new View(name, storage, offset, size.clone(), stride.clone()));
    return this;
  }

  static Storage storage(DType dtype, float[] values) {
    MemorySegment out = MemorySegment.ofArray(new byte[values.length * dtype.byteSize()]);
    for (int i = 0; i < values.length; i++) {
      ElementEncoder.putFloat(out, i, dtype, values[i]);
    }
    return new Storage(dtype, out.toArray(ValueLayout.JAVA_BYTE));
  }

  static Storage storage(DType dtype, long[] values) {
    MemorySegment out = MemorySegment.ofArray(new byte[values.length * dtype.byteSize()]);
    for (int i = 0; i < values.length; i++) {
      ElementEncoder.putLong(out, i, dtype, values[i], "storage");
    }
    return new Storage(dtype, out.toArray(ValueLayout.JAVA_BYTE));
  }

  static long[] contiguousStride(long[] shape) {
    long[] stride = new long[shape.length];
    long s = 1;
    for (int d = shape.length - 1; d >= 0; d--) {
      stride[d] = s;
      s *= shape[d];
    }
    return stride;
  }

  /** Writes every view added to {@code file} in the zip format. */
  void write(Path file) {
    writeZip(file, views);
  }

  /**
   * Splits the views, in order, over {@code numShards} files {@code pytorch_model-<i>-of-<n>.bin}
   * (no zero padding, as the mPLUG-Owl2 converter names them), plus, when asked,
   * {@code pytorch_model.bin.index.json}.
   */
  public List<Path> writeSharded(Path dir, int numShards, boolean withIndex) {
    List<Path> files = new ArrayList<>();
    Map<String, String> weightMap = new LinkedHashMap<>();
    long totalSize = 0;
    for (int s = 0; s < numShards; s++) {
      List<View> shard = views.subList(s * views.size() / numShards, (s + 1) * views.size() / numShards);
      String fileName = "pytorch_model-%d-of-%d.bin".formatted(s + 1, numShards);
      writeZip(dir.resolve(fileName), shard);
      files.add(dir.resolve(fileName));
      for (View v : shard) {
        weightMap.put(v.name(), fileName);
        totalSize += v.storage().bytes().length;
      }
    }
    if (withIndex) {
      StringBuilder json = new StringBuilder("{\n  \"metadata\": {\n    \"total_size\": " + totalSize
          + "\n  },\n  \"weight_map\": {\n");
      int i = 0;
      for (Map.Entry<String, String> e : weightMap.entrySet()) {
        json.append("    \"%s\": \"%s\"%s\n".formatted(e.getKey(), e.getValue(), ++i < weightMap.size() ? "," : ""));
      }
      json.append("  }\n}\n");
      writeBytes(dir.resolve(Checkpoints.TORCH_INDEX), json.toString().getBytes(java.nio.charset.StandardCharsets.UTF_8));
    }
    return files;
  }

  /**
   * Writes the legacy (pre-1.6) format: pickles of the magic number, protocol version 1001 and
   * sys_info, the state dict, the storage keys, then each storage as int64 numel + bytes.
   */
  void writeLegacy(Path file) {
    Map<Storage, String> keys = storageKeys(views);
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    out.writeBytes(new PickleOut().proto().long1(new BigInteger("1950a86a20f9469cfc6c", 16)).op('.').bytes());
    out.writeBytes(new PickleOut().proto().integer(1001).op('.').bytes());
    PickleOut sysInfo = new PickleOut().proto().op('}').put().mark();
    sysInfo.string("protocol_version").integer(1001).string("little_endian").op(0x88).string("type_sizes")
        .op('}').put().mark().string("short").integer(2).string("int").integer(4).string("long").integer(4)
        .op('u').op('u').op('.');
    out.writeBytes(sysInfo.bytes());
    out.writeBytes(stateDictPickle(views, keys, true));
    PickleOut keyList = new PickleOut().proto().op(']').put().mark();
    for (String key : keys.values()) {
      keyList.string(key);
    }
    out.writeBytes(keyList.op('e').op('.').bytes());
    for (Storage s : keys.keySet()) {
      out.writeBytes(new PickleOut().le(s.numel(), 8).bytes());
      out.writeBytes(s.bytes());
    }
    writeBytes(file, out.toByteArray());
  }

  private static Map<Storage, String> storageKeys(List<View> views) {
    Map<Storage, String> keys = new IdentityHashMap<>();
    Map<Storage, String> ordered = new LinkedHashMap<>();
    for (View v : views) {
      if (!keys.containsKey(v.storage())) {
        keys.put(v.storage(), String.valueOf(keys.size()));
        ordered.put(v.storage(), keys.get(v.storage()));
      }
    }
    return ordered;
  }

  private byte[] stateDictPickle(List<View> shard, Map<Storage, String> keys, boolean legacy) {
    PickleOut p = new PickleOut().proto();
    switch (dictStyle) {
      case PLAIN_DICT -> p.op('}').put();
      case ORDERED_DICT, STATE_DICT -> p.global("collections", "OrderedDict").op(')').op('R').put();
    }
    for (int batch = 0; batch < shard.size(); batch += 1000) {
      p.mark(); // CPython's pickler emits SETITEMS per 1000 items
      for (View v : shard.subList(batch, Math.min(shard.size(), batch + 1000))) {
        p.string(v.name());
        p.global("torch._utils", "_rebuild_tensor_v2").mark();
        p.mark().string("storage").global("torch", storageClass(v.storage().dtype())).string(keys.get(v.storage()))
            .string("cpu").integer(v.storage().numel());
        if (legacy) {
          p.op('N');
        }
        p.op('t').put().op('Q');
        p.integer(v.offset()).intTuple(v.size()).intTuple(v.stride()).op(0x89);
        p.global("collections", "OrderedDict").op(')').op('R').put(); // backward_hooks
        p.op('t').put().op('R').put();
      }
      p.op('u');
    }
    if (dictStyle == DictStyle.STATE_DICT) {
      // state = {'_metadata': OrderedDict({'': {'version': 1}})}
      p.op('}').put().string("_metadata").global("collections", "OrderedDict").op(')').op('R').put()
          .string("").op('}').put().string("version").integer(1).op('s').op('s').op('s').op('b');
    }
    return p.op('.').bytes();
  }

  private static String storageClass(DType dtype) {
    return switch (dtype) {
      case F32 -> "FloatStorage";
      case F16 -> "HalfStorage";
      case BF16 -> "BFloat16Storage";
      case I64 -> "LongStorage";
      case I32 -> "IntStorage";
      case U8 -> "ByteStorage";
      case Q8_0, Q4_0 -> throw new IllegalArgumentException("no torch storage holds " + dtype);
    };
  }

  private void writeZip(Path file, List<View> shard) {
    String name = file.getFileName().toString();
    String stem = prefix != null ? prefix : name.contains(".") ? name.substring(0, name.lastIndexOf('.')) : name;
    Map<Storage, String> keys = storageKeys(shard);
    TorchZipOut zip = new TorchZipOut(zip64);
    zip.add(stem + "/data.pkl", stateDictPickle(shard, keys, false));
    for (Map.Entry<Storage, String> e : keys.entrySet()) {
      zip.add(stem + "/data/" + e.getValue(), e.getKey().bytes());
    }
    zip.add(stem + "/version", "3\n".getBytes(java.nio.charset.StandardCharsets.US_ASCII));
    writeBytes(file, zip.finish());
  }

  private static void writeBytes(Path file, byte[] bytes) {
    try {
      Files.write(file, bytes);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
