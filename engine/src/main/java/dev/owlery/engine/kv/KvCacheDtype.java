package dev.owlery.engine.kv;

import java.util.Locale;

/**
 * How a KV cache stores keys and values. Attention widens them back to float32 and computes in
 * float32 either way (the {@code native-bf16} kernels then round them to BF16 for prompts); F16 halves the memory per position (LLaMA-2-7B: 0.5 MiB instead of 1 MiB)
 * at the cost of rounding each cached element to 11 significant bits.
 */
public enum KvCacheDtype {
  /** IEEE half precision: the default, as GPU servers keep their KV caches. */
  F16(2),
  /** float32: the engine's arithmetic exactly, for parity runs. */
  F32(4);

  /** The dtype a cache is created with when none is named. */
  public static final KvCacheDtype DEFAULT = F16;

  private final int bytesPerElement;

  KvCacheDtype(int bytesPerElement) {
    this.bytesPerElement = bytesPerElement;
  }

  public int bytesPerElement() {
    return bytesPerElement;
  }

  /** The flag spelling: {@code f16} or {@code f32}. */
  public String flagValue() {
    return name().toLowerCase(Locale.ROOT);
  }

  /** Parses {@code f16} or {@code f32} (any case); {@code what} names the flag or field in the error. */
  public static KvCacheDtype parse(String what, String value) {
    return switch (value.strip().toLowerCase(Locale.ROOT)) {
      case "f16" -> F16;
      case "f32" -> F32;
      default -> throw new IllegalArgumentException("%s must be f16 or f32. Given: \"%s\"".formatted(what, value));
    };
  }
}
