package dev.owlery.engine.checkpoint;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.math.BigInteger;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Reads the pickles {@code torch.save} writes (protocol 2, plus the few protocol 4 opcodes newer
 * Pythons emit) into plain values: {@code Long}/{@code BigInteger}, {@code Double}, {@code Boolean},
 * {@code String}, null, tuples and lists as {@code List}, dicts as {@code LinkedHashMap},
 * {@link TorchStorageRef} for persistent ids and {@link TorchTensorRef} for rebuilt tensors.
 * Globals outside {@link PickleGlobal} are rejected by name; nothing is ever executed.
 */
final class RestrictedUnpickler {

  private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final ValueLayout.OfLong F64_BITS_BE = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
  private static final int MAX_GLOBAL_NAME = 256;

  private final Path file;
  private final String entry;
  private final MemorySegment data;
  private long position;
  private final List<Object> stack = new ArrayList<>();
  private final List<Integer> marks = new ArrayList<>();
  private final Map<Long, Object> memo = new HashMap<>();

  /**
   * @param file the checkpoint file, for messages
   * @param entry the pickle's name inside it (e.g. {@code archive/data.pkl}), for messages
   * @param data the bytes holding one or more pickles back to back
   */
  RestrictedUnpickler(Path file, String entry, MemorySegment data) {
    this.file = file;
    this.entry = entry;
    this.data = data;
  }

  /** Where the next pickle starts (after {@link #load()}, the byte after its STOP). */
  long position() {
    return position;
  }

  /** Reads one pickle from {@link #position()} up to its STOP opcode and returns its value. */
  Object load() {
    stack.clear();
    marks.clear();
    memo.clear();
    while (true) {
      long at = position;
      int op = u8();
      if (op == '.') {
        if (stack.size() != 1 || !marks.isEmpty()) {
          throw fail(at, "STOP with %d values on the stack".formatted(stack.size()));
        }
        return stack.removeLast();
      }
      step(at, op);
    }
  }

  private void step(long at, int op) {
    switch (op) {
      case 0x80 -> u8(); // PROTO n
      case 0x95 -> skip(8); // FRAME length (protocol 4): frames are only a buffering hint
      case '(' -> marks.add(stack.size()); // MARK
      case '}' -> stack.add(new LinkedHashMap<>()); // EMPTY_DICT
      case ']' -> stack.add(new ArrayList<>()); // EMPTY_LIST
      case ')' -> stack.add(List.of()); // EMPTY_TUPLE
      case 't' -> stack.add(tuple(popMark(at))); // TUPLE
      case 0x85 -> stack.add(tuple(popN(at, 1))); // TUPLE1
      case 0x86 -> stack.add(tuple(popN(at, 2))); // TUPLE2
      case 0x87 -> stack.add(tuple(popN(at, 3))); // TUPLE3
      case 'N' -> stack.add(null); // NONE
      case 0x88 -> stack.add(Boolean.TRUE); // NEWTRUE
      case 0x89 -> stack.add(Boolean.FALSE); // NEWFALSE
      case 'K' -> stack.add((long) u8()); // BININT1
      case 'M' -> stack.add((long) Short.toUnsignedInt(data.get(I16, take(2)))); // BININT2
      case 'J' -> stack.add((long) data.get(I32, take(4))); // BININT
      case 0x8a -> stack.add(long1(at, u8())); // LONG1
      case 'G' -> stack.add(Double.longBitsToDouble(data.get(F64_BITS_BE, take(8)))); // BINFLOAT
      case 'X' -> stack.add(utf8(at, data.get(I32, take(4)) & 0xffffffffL)); // BINUNICODE
      case 0x8c -> stack.add(utf8(at, u8())); // SHORT_BINUNICODE
      case 'c' -> stack.add(global(at, line(at), line(at))); // GLOBAL
      case 0x93 -> { // STACK_GLOBAL
        List<Object> names = popN(at, 2);
        stack.add(global(at, asString(at, names.get(0)), asString(at, names.get(1))));
      }
      case 'Q' -> stack.add(persistentLoad(at, pop(at))); // BINPERSID
      case 'R' -> { // REDUCE
        Object args = pop(at);
        stack.add(reduce(at, pop(at), args));
      }
      case 'b' -> build(at, pop(at), peek(at)); // BUILD
      case 's' -> { // SETITEM
        List<Object> kv = popN(at, 2);
        asDict(at, peek(at)).put(key(at, kv.get(0)), kv.get(1));
      }
      case 'u' -> { // SETITEMS
        List<Object> kvs = popMark(at);
        if (kvs.size() % 2 != 0) {
          throw fail(at, "SETITEMS with an odd number of values");
        }
        Map<Object, Object> dict = asDict(at, peek(at));
        for (int i = 0; i < kvs.size(); i += 2) {
          dict.put(key(at, kvs.get(i)), kvs.get(i + 1));
        }
      }
      case 'a' -> { // APPEND
        Object item = pop(at);
        appendable(at, peek(at)).add(item);
      }
      case 'e' -> { // APPENDS
        List<Object> items = popMark(at);
        appendable(at, peek(at)).addAll(items);
      }
      case 'q' -> memo.put((long) u8(), peek(at)); // BINPUT
      case 'r' -> memo.put(data.get(I32, take(4)) & 0xffffffffL, peek(at)); // LONG_BINPUT
      case 0x94 -> memo.put((long) memo.size(), peek(at)); // MEMOIZE
      case 'h' -> stack.add(memoGet(at, u8())); // BINGET
      case 'j' -> stack.add(memoGet(at, data.get(I32, take(4)) & 0xffffffffL)); // LONG_BINGET
      case '0' -> pop(at); // POP
      case '1' -> popMark(at); // POP_MARK
      case '2' -> stack.add(peek(at)); // DUP
      default -> throw fail(at, "unsupported pickle opcode 0x%02x: a state dict does not use it".formatted(op));
    }
  }

  private PickleGlobal global(long at, String module, String name) {
    PickleGlobal g = PickleGlobal.find(module, name);
    if (g != null) {
      return g;
    }
    if (module.equals("torch") && name.endsWith("Storage")) {
      throw fail(at, "storage type torch.%s is not supported (supported: F32, F16, BF16, I64, I32, U8 storages)"
          .formatted(name));
    }
    throw fail(at, "pickle global '%s.%s' is not allowed: a state dict only uses %s"
        .formatted(module, name, PickleGlobal.allowedList()));
  }

  private Object reduce(long at, Object callable, Object argsValue) {
    if (!(callable instanceof PickleGlobal g)) {
      throw fail(at, "REDUCE on a %s, not a global".formatted(typeName(callable)));
    }
    List<Object> args = asList(at, argsValue);
    return switch (g) {
      case ORDERED_DICT -> {
        Map<Object, Object> dict = new LinkedHashMap<>();
        if (!args.isEmpty()) {
          for (Object pair : asList(at, args.getFirst())) {
            List<Object> kv = asList(at, pair);
            if (kv.size() != 2) {
              throw fail(at, "OrderedDict item has %d values, not (key, value)".formatted(kv.size()));
            }
            dict.put(key(at, kv.get(0)), kv.get(1));
          }
        }
        yield dict;
      }
      case REBUILD_TENSOR_V2 -> rebuildTensor(at, args);
      case REBUILD_PARAMETER -> {
        if (args.isEmpty() || !(args.getFirst() instanceof TorchTensorRef)) {
          throw fail(at, "_rebuild_parameter needs a tensor as its first argument");
        }
        yield args.getFirst();
      }
      case FLOAT_STORAGE, HALF_STORAGE, BFLOAT16_STORAGE, LONG_STORAGE, INT_STORAGE, BYTE_STORAGE ->
          throw fail(at, "%s is called directly; a state dict only names storages in persistent ids"
              .formatted(g.qualifiedName()));
    };
  }

  private TorchTensorRef rebuildTensor(long at, List<Object> args) {
    // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
    if (args.size() < 4 || !(args.get(0) instanceof TorchStorageRef storage)) {
      throw fail(at, "_rebuild_tensor_v2 needs (storage, storage_offset, size, stride, ...), got %d arguments"
          .formatted(args.size()));
    }
    long offset = asLong(at, args.get(1));
    long[] size = longs(at, args.get(2));
    long[] stride = longs(at, args.get(3));
    if (size.length != stride.length) {
      throw fail(at, "tensor size has %d dimensions but stride has %d".formatted(size.length, stride.length));
    }
    return new TorchTensorRef(storage, offset, size, stride);
  }

  private void build(long at, Object state, Object target) {
    // OrderedDict state (a state dict's _metadata attribute) carries no tensors: drop it.
    if (!(target instanceof Map) && !(target instanceof TorchTensorRef)) {
      throw fail(at, "BUILD on a %s".formatted(typeName(target)));
    }
  }

  private TorchStorageRef persistentLoad(long at, Object pidValue) {
    // zip format: ('storage', StorageType, key, location, numel)
    // legacy format: ('storage', StorageType, root_key, location, numel, view_metadata)
    List<Object> pid = asList(at, pidValue);
    if (pid.size() < 5 || !"storage".equals(pid.get(0)) || !(pid.get(1) instanceof PickleGlobal type)
        || type.storageDType() == null) {
      throw fail(at, "persistent id is not ('storage', torch.<Type>Storage, key, location, numel)");
    }
    String key = asString(at, pid.get(2));
    long numel = asLong(at, pid.get(4));
    long elementOffset = 0;
    if (pid.size() == 6 && pid.get(5) != null) {
      List<Object> view = asList(at, pid.get(5)); // (view_key, offset, view_size)
      if (view.size() != 3) {
        throw fail(at, "storage view metadata has %d values, not (view_key, offset, view_size)".formatted(view.size()));
      }
      elementOffset = asLong(at, view.get(1));
      long viewSize = asLong(at, view.get(2));
      if (elementOffset < 0 || viewSize < 0 || elementOffset > numel - viewSize) {
        throw fail(at, "storage view [%d, +%d) lies outside storage '%s' of %d elements"
            .formatted(elementOffset, viewSize, key, numel));
      }
      numel = viewSize;
    }
    if (numel < 0) {
      throw fail(at, "storage '%s' has a negative size %d".formatted(key, numel));
    }
    return new TorchStorageRef(key, type.storageDType(), numel, elementOffset);
  }

  private Object long1(long at, int length) {
    byte[] le = bytes(take(length), length);
    if (length == 0) {
      return 0L;
    }
    byte[] be = new byte[length];
    for (int i = 0; i < length; i++) {
      be[i] = le[length - 1 - i];
    }
    BigInteger v = new BigInteger(be);
    return v.bitLength() < 64 ? (Object) v.longValue() : v;
  }

  private String utf8(long at, long length) {
    if (length > data.byteSize() - position || length > Integer.MAX_VALUE - 16) {
      throw fail(at, "string of %d bytes runs past the end of the pickle (truncated file?)".formatted(length));
    }
    return new String(bytes(take(length), (int) length), StandardCharsets.UTF_8);
  }

  private String line(long at) {
    long start = position;
    long limit = Math.min(data.byteSize(), start + MAX_GLOBAL_NAME);
    for (long i = start; i < limit; i++) {
      if (data.get(ValueLayout.JAVA_BYTE, i) == '\n') {
        position = i + 1;
        return new String(bytes(start, (int) (i - start)), StandardCharsets.UTF_8);
      }
    }
    if (limit == data.byteSize()) {
      throw fail(at, "the pickle ends early (truncated file?) inside a GLOBAL name");
    }
    throw fail(at, "GLOBAL name is not terminated within %d bytes".formatted(MAX_GLOBAL_NAME));
  }

  private Object memoGet(long at, long key) {
    if (!memo.containsKey(key)) {
      throw fail(at, "memo key %d was never stored".formatted(key));
    }
    return memo.get(key);
  }

  private List<Object> popMark(long at) {
    if (marks.isEmpty()) {
      throw fail(at, "no MARK on the stack");
    }
    int mark = marks.removeLast();
    List<Object> items = new ArrayList<>(stack.subList(mark, stack.size()));
    stack.subList(mark, stack.size()).clear();
    return items;
  }

  private List<Object> popN(long at, int n) {
    int floor = marks.isEmpty() ? 0 : marks.getLast();
    if (stack.size() - floor < n) {
      throw fail(at, "stack underflow");
    }
    List<Object> items = new ArrayList<>(stack.subList(stack.size() - n, stack.size()));
    stack.subList(stack.size() - n, stack.size()).clear();
    return items;
  }

  private Object pop(long at) {
    return popN(at, 1).getFirst();
  }

  private Object peek(long at) {
    int floor = marks.isEmpty() ? 0 : marks.getLast();
    if (stack.size() <= floor) {
      throw fail(at, "stack underflow");
    }
    return stack.getLast();
  }

  private static List<Object> tuple(List<Object> items) {
    return Collections.unmodifiableList(items);
  }

  @SuppressWarnings("unchecked")
  private Map<Object, Object> asDict(long at, Object v) {
    if (v instanceof Map<?, ?> m) {
      return (Map<Object, Object>) m;
    }
    throw fail(at, "expected a dict, found a %s".formatted(typeName(v)));
  }

  @SuppressWarnings("unchecked")
  private List<Object> asList(long at, Object v) {
    if (v instanceof List<?> l) {
      return (List<Object>) l;
    }
    throw fail(at, "expected a tuple or list, found a %s".formatted(typeName(v)));
  }

  /** The target of APPEND and APPENDS: a list; a tuple cannot grow, in Python as here. */
  @SuppressWarnings("unchecked")
  private List<Object> appendable(long at, Object v) {
    if (v instanceof ArrayList<?> l) {
      return (List<Object>) l;
    }
    throw fail(at, "APPEND to a %s: only a list can be appended to".formatted(v instanceof List ? "tuple" : typeName(v)));
  }

  /** A dict key: only the immutable scalars Python can hash (a list key would be mutable, even cyclic). */
  private Object key(long at, Object v) {
    if (v == null || v instanceof String || v instanceof Long || v instanceof BigInteger || v instanceof Boolean
        || v instanceof Double) {
      return v;
    }
    throw fail(at, "a %s cannot be a dict key in a state dict".formatted(typeName(v)));
  }

  private long asLong(long at, Object v) {
    if (v instanceof Long l) {
      return l;
    }
    throw fail(at, "expected an integer, found a %s".formatted(typeName(v)));
  }

  private String asString(long at, Object v) {
    if (v instanceof String s) {
      return s;
    }
    throw fail(at, "expected a string, found a %s".formatted(typeName(v)));
  }

  private long[] longs(long at, Object v) {
    List<Object> items = asList(at, v);
    long[] out = new long[items.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = asLong(at, items.get(i));
    }
    return out;
  }

  private static String typeName(Object v) {
    return v == null ? "None" : v.getClass().getSimpleName();
  }

  /**
   * An unpickled value for a message: a number or boolean as itself, anything else by its type; a
   * list may hold itself (DUP, APPEND), so printing it whole could recurse without end.
   */
  static String describe(Object v) {
    return v instanceof Long || v instanceof BigInteger || v instanceof Double || v instanceof Boolean
        ? String.valueOf(v) : typeName(v);
  }

  private int u8() {
    return Byte.toUnsignedInt(data.get(ValueLayout.JAVA_BYTE, take(1)));
  }

  private void skip(long n) {
    take(n);
  }

  /** Advances past {@code n} bytes and returns where they start, failing at the end of the data. */
  private long take(long n) {
    if (n > data.byteSize() - position) {
      throw fail(position, "the pickle ends early (truncated file?) after %d of %d bytes"
          .formatted(position, data.byteSize()));
    }
    long at = position;
    position += n;
    return at;
  }

  private byte[] bytes(long from, int length) {
    return data.asSlice(from, length).toArray(ValueLayout.JAVA_BYTE);
  }

  private CheckpointException fail(long at, String problem) {
    return new CheckpointException(file, null, "%s, byte %d: %s".formatted(entry, at, problem));
  }
}
