package dev.owlery.engine.nativekernels;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Owlery's own C kernels ({@code owlery_cpu.c}, a resource of this module), compiled on the machine
 * that runs them the first time a process asks for them, and called through the FFM API.
 *
 * <p>The source is compiled with the system's C compiler ({@code cc}, or the one the environment
 * variable {@value #COMPILER_VARIABLE} names) into a folder keyed by the SHA-256 of the source, the
 * flags and the compiler's {@code --version}: {@value #CACHE_VARIABLE} when set, else
 * {@code $XDG_CACHE_HOME/owlery/native}, else {@code ~/.cache/owlery/native}. A later process, or
 * another node on the machine, finds the library there (about a second of compiling saved). The
 * library carries every instruction set per function, so it loads on any x86-64;
 * {@link #features()} says which entry points this CPU runs.
 *
 * <p>The matrix-vector products are bound as critical downcalls with heap access: activations and
 * outputs pass as Java arrays without a copy (a call holds the garbage collector for well under a
 * millisecond).
 */
public final class NativeCpuLibrary {

  /** The environment variable naming the C compiler; {@code cc} when unset. */
  public static final String COMPILER_VARIABLE = "OWLERY_CC";

  /** The environment variable naming the folder the compiled library is kept in (inherited by a cluster's nodes). */
  public static final String CACHE_VARIABLE = "OWLERY_NATIVE_CACHE";

  /** What to do about a missing compiler, in the words of the error. */
  public static final String INSTALL_HINT = "install a C compiler (Debian: apt-get install gcc) or name one in "
      + COMPILER_VARIABLE;

  static final String SOURCE = "owlery_cpu.c";
  private static final List<String> FLAGS = List.of("-O2", "-std=gnu11", "-ffp-contract=off", "-fPIC", "-shared");
  private static final String LIBRARY_NAME = "libowlery_cpu.so";

  /** AVX2, FMA and F16C: the Q8_0 kernel's AVX2 form. */
  static final int FEATURE_AVX2 = 1;
  /** AVX-512 VNNI: the Q8_0 kernel's vpdpbusd form. */
  static final int FEATURE_AVX512_VNNI = 2;
  /** AVX-512 F, BW and VL: the F16 kernel. */
  static final int FEATURE_AVX512 = 4;
  /** AMX-TILE and AMX-INT8, with the tile state granted to the process: the Q8_0 kernel of several tokens. */
  static final int FEATURE_AMX_INT8 = 8;
  /** AVX512_BF16: attention's products in BF16 ({@code native-bf16}). */
  static final int FEATURE_AVX512_BF16 = 16;

  private static volatile NativeCpuLibrary loaded;

  private final int features;
  private final MethodHandle q8Vnni;
  private final MethodHandle q8Avx2;
  private final MethodHandle q4Vnni;
  private final MethodHandle q4Avx2;
  private final MethodHandle halfMatvecAvx512;
  private final MethodHandle halfMatmulAvx512;
  private final MethodHandle bf16MatmulDp;
  private final MethodHandle bf16Round;
  private final MethodHandle q8Amx;
  private final MethodHandle q8MatmulVnni;
  private final MethodHandle q4MatmulVnni;
  private final MethodHandle blockTable;
  private final MethodHandle packTokens;
  private final MethodHandle quantize;
  private final MethodHandle bf16KeyTiles;
  private final MethodHandle bf16ValuePairs;
  private final MethodHandle attentionBf16;
  private final MethodHandle attentionBf16Scratch;

  private NativeCpuLibrary(Path file) {
    SymbolLookup lookup = SymbolLookup.libraryLookup(file, Arena.global());
    Linker linker = Linker.nativeLinker();
    MethodHandle featureCall = linker.downcallHandle(find(lookup, "owlery_cpu_features"),
        FunctionDescriptor.of(ValueLayout.JAVA_INT));
    try {
      features = (int) featureCall.invokeExact();
    } catch (Throwable t) {
      throw new IllegalStateException("owlery_cpu_features failed", t);
    }
    FunctionDescriptor q8 = FunctionDescriptor.ofVoid(ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT,
        ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS);
    Linker.Option critical = Linker.Option.critical(true);
    q8Vnni = linker.downcallHandle(find(lookup, "owlery_q8_0_matvec_vnni"), q8, critical);
    q8Avx2 = linker.downcallHandle(find(lookup, "owlery_q8_0_matvec_avx2"), q8, critical);
    q4Vnni = linker.downcallHandle(find(lookup, "owlery_q4_0_matvec_vnni"), q8, critical);
    q4Avx2 = linker.downcallHandle(find(lookup, "owlery_q4_0_matvec_avx2"), q8, critical);
    halfMatvecAvx512 = linker.downcallHandle(find(lookup, "owlery_half_matvec_avx512"), FunctionDescriptor.ofVoid(
        ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
        ValueLayout.ADDRESS, ValueLayout.JAVA_INT), critical);
    halfMatmulAvx512 = linker.downcallHandle(find(lookup, "owlery_half_matmul_avx512"), FunctionDescriptor.ofVoid(
        ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
        ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT), critical);
    bf16MatmulDp = linker.downcallHandle(find(lookup, "owlery_bf16_matmul_dp"), FunctionDescriptor.ofVoid(
        ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
        ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG), critical);
    bf16Round = linker.downcallHandle(find(lookup, "owlery_bf16_round"), FunctionDescriptor.ofVoid(
        ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.ADDRESS), critical);
    q8Amx = linker.downcallHandle(find(lookup, "owlery_q8_0_matmul_amx"), FunctionDescriptor.ofVoid(
        ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
        ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG),
        critical);
    FunctionDescriptor matmulVnni = FunctionDescriptor.ofVoid(ValueLayout.ADDRESS, ValueLayout.JAVA_LONG,
        ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS,
        ValueLayout.ADDRESS, ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG);
    q8MatmulVnni = linker.downcallHandle(find(lookup, "owlery_q8_0_matmul_vnni"), matmulVnni, critical);
    q4MatmulVnni = linker.downcallHandle(find(lookup, "owlery_q4_0_matmul_vnni"), matmulVnni, critical);
    blockTable = linker.downcallHandle(find(lookup, "owlery_block_table"), FunctionDescriptor.ofVoid(
        ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT,
        ValueLayout.ADDRESS, ValueLayout.ADDRESS));
    quantize = linker.downcallHandle(find(lookup, "owlery_quantize_q8_0"), FunctionDescriptor.ofVoid(
        ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.ADDRESS, ValueLayout.ADDRESS), critical);
    packTokens = linker.downcallHandle(find(lookup, "owlery_q8_0_pack_tokens"), FunctionDescriptor.ofVoid(
        ValueLayout.ADDRESS, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.ADDRESS), critical);
    FunctionDescriptor toBf16 = FunctionDescriptor.ofVoid(ValueLayout.ADDRESS, ValueLayout.JAVA_INT,
        ValueLayout.JAVA_INT, ValueLayout.ADDRESS);
    bf16KeyTiles = linker.downcallHandle(find(lookup, "owlery_bf16_key_tiles"), toBf16, critical);
    bf16ValuePairs = linker.downcallHandle(find(lookup, "owlery_bf16_value_pairs"), toBf16, critical);
    attentionBf16 = linker.downcallHandle(find(lookup, "owlery_attention_bf16"), FunctionDescriptor.ofVoid(
        ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT,
        ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_FLOAT, ValueLayout.ADDRESS, ValueLayout.ADDRESS,
        ValueLayout.ADDRESS), critical);
    attentionBf16Scratch = linker.downcallHandle(find(lookup, "owlery_attention_bf16_scratch"),
        FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
  }

  /**
   * The process's library, compiled (or found compiled) and loaded on the first call.
   *
   * @throws NativeKernelsUnavailableException when this is not an x86-64 Linux machine, no compiler
   *     can be run, or the compile fails
   */
  public static NativeCpuLibrary load() {
    NativeCpuLibrary library = loaded;
    if (library == null) {
      synchronized (NativeCpuLibrary.class) {
        library = loaded;
        if (library == null) {
          String arch = System.getProperty("os.arch");
          if (!"amd64".equals(arch) && !"x86_64".equals(arch)) {
            throw new NativeKernelsUnavailableException("the native kernels are x86-64 code; this JVM runs on " + arch, null);
          }
          library = loaded = new NativeCpuLibrary(
              compiled(cacheRoot(), System.getenv().getOrDefault(COMPILER_VARIABLE, "cc")));
        }
      }
    }
    return library;
  }

  /** Whether this CPU runs the Q8_0 kernel at all (AVX2, FMA and F16C). */
  public boolean runsQ8_0() {
    return (features & FEATURE_AVX2) != 0;
  }

  /** Whether the Q8_0 kernel runs on AVX-512 VNNI's int8 dot product (else on AVX2's). */
  public boolean hasVnni() {
    return (features & FEATURE_AVX512_VNNI) != 0;
  }

  /** Whether this CPU runs the F16 and BF16 kernels (AVX-512 F, BW, VL and F16C). */
  public boolean runsHalf() {
    return (features & FEATURE_AVX512) != 0;
  }

  /** Whether Q8_0 products of several tokens can run on AMX here (else on VNNI, else on the vector kernels). */
  public boolean hasAmx() {
    return (features & FEATURE_AMX_INT8) != 0;
  }

  /** Whether attention can multiply in BF16 here (AVX512_BF16, with AVX-512 F, BW and VL). */
  public boolean hasBf16() {
    return (features & FEATURE_AVX512_BF16) != 0;
  }

  /** The instruction sets the kernels use here: "avx512-vnni", "avx2" or "none", and "+amx". */
  public String instructionSet() {
    return (hasVnni() ? "avx512-vnni" : runsQ8_0() ? "avx2" : "none") + (hasAmx() ? "+amx" : "");
  }

  /**
   * {@code out[i] = row i of w times the activations}, for {@code rows} Q8_0 (or, with {@code q4},
   * Q4_0) rows of {@code blocks} blocks, {@code stride} bytes apart from {@code w}'s start; the
   * activations in Q8_0 as {@code xq} (int8, {@code 32 * blocks}) and one float scale per block
   * {@code xd}. On VNNI when {@code vnni} (the CPU must have it), else on AVX2; both give the same bits.
   */
  void blockMatvec(boolean q4, boolean vnni, MemorySegment w, long stride, int rows, int blocks, MemorySegment xq,
      MemorySegment xd, MemorySegment out) {
    MethodHandle kernel = q4 ? (vnni ? q4Vnni : q4Avx2) : (vnni ? q8Vnni : q8Avx2);
    try {
      kernel.invokeExact(w, stride, rows, blocks, xq, xd, out);
    } catch (Throwable t) {
      throw new IllegalStateException("the native " + (q4 ? "Q4_0" : "Q8_0") + " matvec failed", t);
    }
  }

  /**
   * {@code out[t * outStride + i] = row i of w times token t's activations}, for {@code rows} Q8_0
   * (with {@code q4}, Q4_0: VNNI only) rows ({@code blocks} blocks, {@code stride} bytes apart) and
   * {@code tokens} tokens: the rows' block scales as floats in {@code wScales} and, for the VNNI
   * form, their offsets in {@code wOffsets} (both as {@link #blockTable} makes them, row-major; the
   * scales zero-padded to a multiple of 16 rows for AMX), the tokens' int8 activations as
   * {@link #packTokens} packs them, their block scales 16 per block and tile of 16 tokens (zero for
   * missing tokens) in {@code xScales}. On AMX when {@code amx} (the CPU must have it), else on AVX-512 VNNI (likewise);
   * both give the same bits.
   */
  void blockMatmul(boolean q4, boolean amx, MemorySegment w, long stride, int rows, int blocks,
      MemorySegment wScales, MemorySegment wOffsets, MemorySegment xPacked, MemorySegment xScales, int tokens,
      MemorySegment out, long outStride) {
    if (q4 && amx) {
      throw new IllegalArgumentException("Q4_0 products of several tokens run on VNNI, not AMX");
    }
    try {
      if (amx) {
        q8Amx.invokeExact(w, stride, rows, blocks, wScales, xPacked, xScales, tokens, out, outStride);
      } else {
        (q4 ? q4MatmulVnni : q8MatmulVnni).invokeExact(w, stride, rows, blocks, wScales, wOffsets, xPacked, xScales,
            tokens, out, outStride);
      }
    } catch (Throwable t) {
      throw new IllegalStateException("the native " + (q4 ? "Q4_0" : "Q8_0") + " matmul failed", t);
    }
  }

  /**
   * Per row and block of the {@code rows} Q8_0 (with {@code q4}, Q4_0) rows at {@code w}: its scale
   * as a float into {@code scales} and, unless {@code offsets} is {@link MemorySegment#NULL}, -128
   * times the sum of its weights as int8 (Q4_0: q - 8) into {@code offsets} (both row-major,
   * {@code rows * blocks}).
   */
  void blockTable(boolean q4, MemorySegment w, long stride, int rows, int blocks, MemorySegment scales,
      MemorySegment offsets) {
    try {
      blockTable.invokeExact(w, stride, rows, blocks, q4 ? 1 : 0, scales, offsets);
    } catch (Throwable t) {
      throw new IllegalStateException("the block table failed", t);
    }
  }

  /**
   * {@code blocks} blocks of 32 floats at {@code x} quantized to Q8_0 as {@link Q8Activations} says:
   * int8 values into {@code q}, one scale per block into {@code d}.
   */
  void quantize(MemorySegment x, long blocks, MemorySegment q, MemorySegment d) {
    try {
      quantize.invokeExact(x, blocks, q, d);
    } catch (Throwable t) {
      throw new IllegalStateException("quantizing the activations failed", t);
    }
  }

  /**
   * Tokens' int8 activations ({@code tokens} x {@code cols}, row-major) into the several-token
   * kernels' layout (tdpbssd's B): {@code ceil(tokens / 16) * cols / 32 * 512} bytes at {@code out}.
   */
  void packTokens(MemorySegment xq, int tokens, int cols, MemorySegment out) {
    try {
      packTokens.invokeExact(xq, tokens, cols, out);
    } catch (Throwable t) {
      throw new IllegalStateException("packing the activations failed", t);
    }
  }

  /**
   * {@code count} keys ({@code headDim} floats each, a multiple of 16, row after row) rounded to BF16
   * into {@link #attentionBf16}'s key tiles at {@code tiles}: {@code ceil(count / 64) * 64 * headDim}
   * halves, zero past the last key.
   */
  void bf16KeyTiles(MemorySegment keys, int count, int headDim, MemorySegment tiles) {
    try {
      bf16KeyTiles.invokeExact(keys, count, headDim, tiles);
    } catch (Throwable t) {
      throw new IllegalStateException("rounding the keys to BF16 failed", t);
    }
  }

  /**
   * {@code count} values ({@code headDim} floats each, a multiple of 16, row after row) rounded to
   * BF16 into {@link #attentionBf16}'s value pairs at {@code pairs}: {@code ceil(count / 2) * 2 * headDim}
   * halves, zero past the last value.
   */
  void bf16ValuePairs(MemorySegment values, int count, int headDim, MemorySegment pairs) {
    try {
      bf16ValuePairs.invokeExact(values, count, headDim, pairs);
    } catch (Throwable t) {
      throw new IllegalStateException("rounding the values to BF16 failed", t);
    }
  }

  /**
   * Softmax attention of {@code rows} query rows of one kv head, its products in BF16 (owlery_cpu.c):
   * row r's query at float {@code qRows[r]} of {@code q}, seeing keys {@code [0, visible[r])} of
   * {@code keyTiles} and {@code valuePairs} (made by {@link #bf16KeyTiles} and {@link #bf16ValuePairs});
   * its output to float {@code outRows[r]} of {@code out}. {@code scratch} holds at least
   * {@link #attentionBf16Scratch} floats.
   */
  void attentionBf16(MemorySegment q, MemorySegment qRows, MemorySegment visible, int rows, int headDim,
      MemorySegment keyTiles, MemorySegment valuePairs, float scale, MemorySegment out, MemorySegment outRows,
      MemorySegment scratch) {
    try {
      attentionBf16.invokeExact(q, qRows, visible, rows, headDim, keyTiles, valuePairs, scale, out, outRows, scratch);
    } catch (Throwable t) {
      throw new IllegalStateException("the native BF16 attention failed", t);
    }
  }

  /** The floats of scratch {@link #attentionBf16} needs for {@code rows} rows of {@code headDim}. */
  long attentionBf16Scratch(int rows, int headDim) {
    try {
      return (long) attentionBf16Scratch.invokeExact(rows, headDim);
    } catch (Throwable t) {
      throw new IllegalStateException("owlery_attention_bf16_scratch failed", t);
    }
  }

  /**
   * {@code out[i] = row i of w times x}, for {@code rows} F16 (with {@code bf16}, BF16) rows of
   * {@code cols} halves (a multiple of 32), {@code stride} bytes apart from {@code w}'s start.
   */
  void halfMatvec(boolean bf16, MemorySegment w, long stride, int rows, int cols, MemorySegment x, MemorySegment out) {
    try {
      halfMatvecAvx512.invokeExact(w, stride, rows, cols, x, out, bf16 ? 1 : 0);
    } catch (Throwable t) {
      throw new IllegalStateException("the native F16/BF16 matvec failed", t);
    }
  }

  /**
   * {@code out[t * outStride + i] = row i of w times token t}, for {@code rows} F16 (with
   * {@code bf16}, BF16) rows of {@code cols} halves (a multiple of 32), {@code stride} bytes apart,
   * and {@code tokens} tokens of {@code cols} floats each, row after row, at {@code x}.
   */
  void halfMatmul(boolean bf16, MemorySegment w, long stride, int rows, int cols, MemorySegment x, int tokens,
      MemorySegment out, long outStride) {
    try {
      halfMatmulAvx512.invokeExact(w, stride, rows, cols, x, tokens, out, outStride, bf16 ? 1 : 0);
    } catch (Throwable t) {
      throw new IllegalStateException("the native F16/BF16 matmul failed", t);
    }
  }

  /**
   * {@code out[t * outStride + i] = row i of w times token t} in BF16 arithmetic (AVX512_BF16's
   * {@code vdpbf16ps}), for {@code rows} BF16 rows of {@code cols} halves (a multiple of 32),
   * {@code stride} bytes apart, and {@code tokens} tokens of {@code cols} BF16 activations each
   * ({@link #bf16Round}), row after row, at {@code xb}.
   */
  void bf16MatmulDp(MemorySegment w, long stride, int rows, int cols, MemorySegment xb, int tokens,
      MemorySegment out, long outStride) {
    try {
      bf16MatmulDp.invokeExact(w, stride, rows, cols, xb, tokens, out, outStride);
    } catch (Throwable t) {
      throw new IllegalStateException("the native BF16 matmul failed", t);
    }
  }

  /** {@code n} floats (a multiple of 32) rounded to BF16, to nearest even, into {@code out}. */
  void bf16Round(MemorySegment x, long n, MemorySegment out) {
    try {
      bf16Round.invokeExact(x, n, out);
    } catch (Throwable t) {
      throw new IllegalStateException("rounding to BF16 failed", t);
    }
  }

  /**
   * The library under {@code root}, compiled there with {@code compiler} first unless a process
   * before compiled the same source the same way.
   */
  static Path compiled(Path root, String compiler) {
    byte[] source = source();
    String version = run(List.of(compiler, "--version"), null);
    Path folder = root.resolve(key(source, compiler, version));
    Path library = folder.resolve(LIBRARY_NAME);
    if (Files.isRegularFile(library)) {
      return library;
    }
    try {
      Files.createDirectories(folder);
      Path sourceFile = Files.createTempFile(folder, "owlery_cpu", ".c");
      Path built = Files.createTempFile(folder, "libowlery_cpu", ".so.tmp");
      try {
        Files.write(sourceFile, source);
        List<String> command = new ArrayList<>(List.of(compiler));
        command.addAll(FLAGS);
        command.addAll(List.of("-o", built.toString(), sourceFile.toString()));
        run(command, sourceFile);
        try {
          Files.move(built, library, StandardCopyOption.ATOMIC_MOVE);
        } catch (AtomicMoveNotSupportedException e) {
          Files.move(built, library, StandardCopyOption.REPLACE_EXISTING);
        }
      } finally {
        Files.deleteIfExists(sourceFile);
        Files.deleteIfExists(built);
      }
    } catch (IOException e) {
      throw new NativeKernelsUnavailableException("could not write the native kernels under " + root + ": " + e, e);
    }
    return library;
  }

  private static Path cacheRoot() {
    String configured = System.getenv(CACHE_VARIABLE);
    if (configured != null && !configured.isBlank()) {
      return Path.of(configured);
    }
    String xdg = System.getenv("XDG_CACHE_HOME");
    Path base = xdg != null && !xdg.isBlank() ? Path.of(xdg) : Path.of(System.getProperty("user.home"), ".cache");
    return base.resolve("owlery").resolve("native");
  }

  static byte[] source() {
    try (InputStream in = NativeCpuLibrary.class.getResourceAsStream(SOURCE)) {
      if (in == null) {
        throw new IllegalStateException(SOURCE + " is missing from the engine-native jar");
      }
      return in.readAllBytes();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static String key(byte[] source, String compiler, String version) {
    try {
      MessageDigest digest = MessageDigest.getInstance("SHA-256");
      digest.update(source);
      digest.update(String.join("\0", compiler, String.join(" ", FLAGS), version).getBytes(StandardCharsets.UTF_8));
      return HexFormat.of().formatHex(digest.digest(), 0, 12);
    } catch (NoSuchAlgorithmException e) {
      throw new AssertionError(e);
    }
  }

  /** Runs a command to its end and returns its output; a failure names the command and what it printed. */
  private static String run(List<String> command, Path source) {
    try {
      Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
      String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      if (!process.waitFor(2, TimeUnit.MINUTES)) {
        process.destroyForcibly();
        throw new NativeKernelsUnavailableException(String.join(" ", command) + " ran for over 2 minutes", null);
      }
      if (process.exitValue() != 0) {
        throw new NativeKernelsUnavailableException("%s failed (exit %d)%s:%n%s".formatted(String.join(" ", command),
            process.exitValue(), source == null ? "" : " compiling " + SOURCE, output.strip()), null);
      }
      return output;
    } catch (IOException e) {
      throw new NativeKernelsUnavailableException("the native kernels are compiled on first use, and %s cannot be run: %s"
          .formatted(command.getFirst(), INSTALL_HINT), e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new NativeKernelsUnavailableException("interrupted while running " + command.getFirst(), e);
    }
  }

  private static MemorySegment find(SymbolLookup lookup, String symbol) {
    return lookup.find(symbol).orElseThrow(() -> new IllegalStateException(LIBRARY_NAME + " has no " + symbol));
  }
}
