package dev.owlery.engine.checkpoint;

import java.io.ByteArrayOutputStream;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;

/**
 * Emits pickle protocol 2 opcodes the way CPython's pickler does for a state dict: strings and
 * globals are memoized on first use and fetched with BINGET afterwards.
 */
final class PickleOut {

  private final ByteArrayOutputStream out = new ByteArrayOutputStream();
  private final Map<String, Integer> memo = new HashMap<>();

  PickleOut proto() {
    return op(0x80).op(2);
  }

  PickleOut op(int opcode) {
    out.write(opcode);
    return this;
  }

  PickleOut raw(byte[] bytes) {
    out.writeBytes(bytes);
    return this;
  }

  PickleOut mark() {
    return op('(');
  }

  /** BINPUT / LONG_BINPUT of the value on top of the stack under the next memo index. */
  PickleOut put() {
    return putIndex(nextIndex++);
  }

  private int nextIndex;

  private PickleOut putIndex(int index) {
    if (index < 256) {
      return op('q').op(index);
    }
    op('r');
    return le(index, 4);
  }

  PickleOut get(int index) {
    if (index < 256) {
      return op('h').op(index);
    }
    op('j');
    return le(index, 4);
  }

  /** A memoized string: BINUNICODE + BINPUT the first time, BINGET afterwards. */
  PickleOut string(String s) {
    Integer seen = memo.get("s:" + s);
    if (seen != null) {
      return get(seen);
    }
    byte[] utf8 = s.getBytes(StandardCharsets.UTF_8);
    op('X').le(utf8.length, 4).raw(utf8);
    return remember("s:" + s);
  }

  /** A memoized global: GLOBAL module\nname\n + BINPUT the first time, BINGET afterwards. */
  PickleOut global(String module, String name) {
    Integer seen = memo.get("g:" + module + "." + name);
    if (seen != null) {
      return get(seen);
    }
    op('c').raw((module + "\n" + name + "\n").getBytes(StandardCharsets.UTF_8));
    return remember("g:" + module + "." + name);
  }

  private PickleOut remember(String key) {
    int index = nextIndex++;
    memo.put(key, index);
    return putIndex(index);
  }

  /** An int with the smallest opcode CPython picks (BININT1, BININT2, BININT or LONG1). */
  PickleOut integer(long v) {
    if (v >= 0 && v < 256) {
      return op('K').op((int) v);
    }
    if (v >= 0 && v < 65536) {
      op('M');
      return le(v, 2);
    }
    if (v == (int) v) {
      op('J');
      return le(v, 4);
    }
    return long1(BigInteger.valueOf(v));
  }

  PickleOut long1(BigInteger v) {
    byte[] be = v.toByteArray();
    op(0x8a).op(be.length);
    for (int i = be.length - 1; i >= 0; i--) {
      out.write(be[i]);
    }
    return this;
  }

  /** A tuple of ints: TUPLE1/2/3 or MARK ... TUPLE, then BINPUT. */
  PickleOut intTuple(long[] values) {
    if (values.length == 0) {
      return op(')');
    }
    if (values.length > 3) {
      mark();
    }
    for (long v : values) {
      integer(v);
    }
    op(switch (values.length) {
      case 1 -> 0x85;
      case 2 -> 0x86;
      case 3 -> 0x87;
      default -> 't';
    });
    return put();
  }

  PickleOut le(long v, int bytes) {
    for (int i = 0; i < bytes; i++) {
      out.write((int) (v >>> (8 * i)) & 0xff);
    }
    return this;
  }

  byte[] bytes() {
    return out.toByteArray();
  }
}
