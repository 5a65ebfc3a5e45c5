package dev.owlery.engine.onednn;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The system's oneDNN ({@code libdnnl.so.3} or {@code .so.2}: Debian 12's {@code libdnnl2} is 2.6.3) as
 * far as Owlery calls it:
 * {@code dnnl_gemm_bf16bf16f32}, the row-major BF16 GEMM with float32 sums and output that
 * PyTorch's BF16 linear layers run on the CPU (on AMX or AVX-512 BF16 where the CPU has them), and
 * the OpenMP runtime it was built with ({@code libgomp.so.1}), whose thread count is set per
 * calling thread before each call.
 *
 * <p>Loaded once per process on first use; a machine without the library gets one line saying
 * what to install. The GEMM is bound as a critical downcall with heap access: activations and
 * outputs pass as Java arrays without a copy, and the garbage collector waits for the call (a few
 * to a few tens of milliseconds for the vision tower's matmuls).
 */
public final class OneDnnLibrary {

  /** The library's file names as the dynamic linker finds them, tried in turn: oneDNN 3.x, then 2.x. */
  public static final List<String> LIBRARIES = List.of("libdnnl.so.3", "libdnnl.so.2");

  private static final String OPENMP = "libgomp.so.1";

  /** What to do about a missing library, in the words of the error. */
  public static final String INSTALL_HINT =
      "install oneDNN (Debian 12: apt-get install libdnnl2; later releases: libdnnl3)";

  /** oneDNN 2.x's {@code dnnl_cpu_isa_t} values (dnnl_types.h) for the ISAs its x86 kernels pick. */
  private static final Map<Integer, String> ISA_NAMES = Map.of(
      0x1, "sse41",
      0x3, "avx",
      0x7, "avx2",
      0x27, "avx512_core",
      0x67, "avx512_core_vnni",
      0xe7, "avx512_core_bf16",
      0x3e7, "avx512_core_amx",
      0x407, "avx2_vnni");

  private static volatile OneDnnLibrary loaded;

  private final MethodHandle gemmBf16;
  private final MethodHandle setNumThreads;
  private final String version;
  private final String cpuIsa;

  private OneDnnLibrary(SymbolLookup dnnl, String dnnlName, SymbolLookup openMp) {
    Linker linker = Linker.nativeLinker();
    gemmBf16 = linker.downcallHandle(find(dnnl, "dnnl_gemm_bf16bf16f32", dnnlName),
        FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_BYTE, ValueLayout.JAVA_BYTE, ValueLayout.JAVA_LONG,
            ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_FLOAT, ValueLayout.ADDRESS,
            ValueLayout.JAVA_LONG, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_FLOAT, ValueLayout.ADDRESS,
            ValueLayout.JAVA_LONG),
        Linker.Option.critical(true));
    setNumThreads = linker.downcallHandle(find(openMp, "omp_set_num_threads", OPENMP),
        FunctionDescriptor.ofVoid(ValueLayout.JAVA_INT));
    MethodHandle versionCall = linker.downcallHandle(find(dnnl, "dnnl_version", dnnlName),
        FunctionDescriptor.of(ValueLayout.ADDRESS));
    MethodHandle isaCall = linker.downcallHandle(find(dnnl, "dnnl_get_effective_cpu_isa", dnnlName),
        FunctionDescriptor.of(ValueLayout.JAVA_INT));
    try {
      // dnnl_version_t: int major, minor, patch; const char *hash; ...
      MemorySegment v = ((MemorySegment) versionCall.invokeExact()).reinterpret(3 * Integer.BYTES);
      version = "%d.%d.%d".formatted(v.getAtIndex(ValueLayout.JAVA_INT, 0), v.getAtIndex(ValueLayout.JAVA_INT, 1),
          v.getAtIndex(ValueLayout.JAVA_INT, 2));
      int isa = (int) isaCall.invokeExact();
      cpuIsa = ISA_NAMES.getOrDefault(isa, "isa 0x" + Integer.toHexString(isa));
    } catch (Throwable t) {
      throw new IllegalStateException("oneDNN: could not read its version and CPU ISA", t);
    }
  }

  /**
   * The process's oneDNN, loaded on the first call.
   *
   * @throws OneDnnUnavailableException when none of {@link #LIBRARIES}, or one of its functions, can be found
   */
  public static OneDnnLibrary load() {
    OneDnnLibrary library = loaded;
    if (library == null) {
      synchronized (OneDnnLibrary.class) {
        library = loaded;
        if (library == null) {
          library = loaded = open(LIBRARIES, OPENMP);
        }
      }
    }
    return library;
  }

  /**
   * Opens the first of {@code dnnlNames} the dynamic linker finds, and OpenMP; package-private so a
   * test can name libraries that do not exist.
   */
  static OneDnnLibrary open(List<String> dnnlNames, String openMpName) {
    // libgomp reads OMP_WAIT_POLICY when it is loaded: unless the user chose, the team's threads sleep
    // between calls instead of spinning on the cores the vector kernels run on next.
    setEnvironmentDefault("OMP_WAIT_POLICY", "PASSIVE");
    for (String name : dnnlNames) {
      Optional<SymbolLookup> dnnl = lookup(name);
      if (dnnl.isPresent()) {
        SymbolLookup openMp = lookup(openMpName).orElseThrow(() -> new OneDnnUnavailableException(
            "oneDNN's %s needs %s, which the dynamic linker cannot find".formatted(name, openMpName), null));
        return new OneDnnLibrary(dnnl.get(), name, openMp);
      }
    }
    throw new OneDnnUnavailableException("oneDNN kernels need %s, which the dynamic linker cannot find: %s"
        .formatted(String.join(" or ", dnnlNames), INSTALL_HINT), null);
  }

  private static Optional<SymbolLookup> lookup(String name) {
    try {
      return Optional.of(SymbolLookup.libraryLookup(name, Arena.global()));
    } catch (IllegalArgumentException e) {
      return Optional.empty();
    }
  }

  private static MemorySegment find(SymbolLookup lookup, String symbol, String library) {
    Optional<MemorySegment> address = lookup.find(symbol);
    return address.orElseThrow(() -> new OneDnnUnavailableException(
        "%s has no function %s (oneDNN 2.x or 3.x expected): %s".formatted(library, symbol, INSTALL_HINT), null));
  }

  private static void setEnvironmentDefault(String name, String value) {
    Linker linker = Linker.nativeLinker();
    MethodHandle setenv = linker.downcallHandle(linker.defaultLookup().find("setenv").orElseThrow(),
        FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_INT));
    try (Arena arena = Arena.ofConfined()) {
      int unused = (int) setenv.invokeExact(arena.allocateFrom(name), arena.allocateFrom(value), 0);
    } catch (Throwable t) {
      throw new IllegalStateException("setenv(" + name + ") failed", t);
    }
  }

  /**
   * Row-major {@code c[m, n] = sum_k a[m, k] * b[n, k]} (b transposed: b holds n rows of k) over
   * BF16 a and b with float32 sums, on {@code numThreads} OpenMP threads (the calling thread among
   * them). Row strides are in elements. Any of the three segments may be a heap segment. No alpha:
   * oneDNN 2.6 takes a path six times slower for any alpha but 1 (1,025 x 1,025 x 64: 6.1 against
   * 0.95 ms), so callers scale elsewhere.
   */
  public void gemmBf16TransposedB(long m, long n, long k, MemorySegment a, long lda, MemorySegment b, long ldb,
      MemorySegment c, long ldc, int numThreads) {
    gemm((byte) 'T', m, n, k, a, lda, b, ldb, c, ldc, numThreads);
  }

  /** As {@link #gemmBf16TransposedB} with b not transposed: {@code c[m, n] = sum_k a[m, k] * b[k, n]}. */
  public void gemmBf16(long m, long n, long k, MemorySegment a, long lda, MemorySegment b, long ldb, MemorySegment c,
      long ldc, int numThreads) {
    gemm((byte) 'N', m, n, k, a, lda, b, ldb, c, ldc, numThreads);
  }

  private void gemm(byte transB, long m, long n, long k, MemorySegment a, long lda, MemorySegment b, long ldb,
      MemorySegment c, long ldc, int numThreads) {
    int status;
    try {
      setNumThreads.invokeExact(numThreads);
      status = (int) gemmBf16.invokeExact((byte) 'N', transB, m, n, k, 1f, a, lda, b, ldb, 0f, c, ldc);
    } catch (Throwable t) {
      throw new IllegalStateException("oneDNN gemm failed to run", t);
    }
    if (status != 0) {
      throw new IllegalStateException(("dnnl_gemm_bf16bf16f32 returned status %d for transb=%c m=%d n=%d k=%d lda=%d "
          + "ldb=%d ldc=%d").formatted(status, (char) transB, m, n, k, lda, ldb, ldc));
    }
  }

  /** The library's version, "2.6.3". */
  public String version() {
    return version;
  }

  /** The instruction set oneDNN's kernels use on this CPU ("avx512_core_amx", "avx512_core_bf16", ...). */
  public String cpuIsa() {
    return cpuIsa;
  }
}
