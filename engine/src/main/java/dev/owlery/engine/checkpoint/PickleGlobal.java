package dev.owlery.engine.checkpoint;

import dev.owlery.engine.tensor.DType;

/**
 * The only Python globals a PyTorch state-dict pickle may name; {@link RestrictedUnpickler} rejects
 * every other one, so loading a checkpoint never runs or builds anything else.
 */
enum PickleGlobal {
  ORDERED_DICT("collections", "OrderedDict", null),
  REBUILD_TENSOR_V2("torch._utils", "_rebuild_tensor_v2", null),
  REBUILD_PARAMETER("torch._utils", "_rebuild_parameter", null),
  FLOAT_STORAGE("torch", "FloatStorage", DType.F32),
  HALF_STORAGE("torch", "HalfStorage", DType.F16),
  BFLOAT16_STORAGE("torch", "BFloat16Storage", DType.BF16),
  LONG_STORAGE("torch", "LongStorage", DType.I64),
  INT_STORAGE("torch", "IntStorage", DType.I32),
  BYTE_STORAGE("torch", "ByteStorage", DType.U8);

  private final String module;
  private final String name;
  private final DType storageDType;

  PickleGlobal(String module, String name, DType storageDType) {
    this.module = module;
    this.name = name;
    this.storageDType = storageDType;
  }

  /** {@code module.name}, as Python spells it. */
  String qualifiedName() {
    return module + "." + name;
  }

  /** The element type of a storage class; null for the callables. */
  DType storageDType() {
    return storageDType;
  }

  /** The allowed global {@code module.name}, or null when it is not one a state dict uses. */
  static PickleGlobal find(String module, String name) {
    for (PickleGlobal g : values()) {
      if (g.module.equals(module) && g.name.equals(name)) {
        return g;
      }
    }
    return null;
  }

  /** The allowed globals, for error messages. */
  static String allowedList() {
    StringBuilder s = new StringBuilder();
    for (PickleGlobal g : values()) {
      s.append(s.isEmpty() ? "" : ", ").append(g.qualifiedName());
    }
    return s.toString();
  }
}
