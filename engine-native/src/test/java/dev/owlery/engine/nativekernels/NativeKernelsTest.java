package dev.owlery.engine.nativekernels;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.owlery.engine.kernel.KernelsProvider;
import dev.owlery.engine.kernel.VectorKernels;
import dev.owlery.engine.tensor.DType;
import dev.owlery.engine.tensor.Matrix;
import dev.owlery.engine.tensor.WeightFormat;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

class NativeKernelsTest {

  private static final ValueLayout.OfShort HALF = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  /** Row counts: fewer than four, fewer than a parallel call, one part each, uneven quarters and leftovers. */
  private static final int[] ROWS = {1, 3, 63, 64, 67, 517};

  private static NativeCpuLibrary library;
  private static final Arena arena = Arena.ofShared();

  @BeforeAll
  static void load() {
    library = NativeTesting.library();
  }

  @AfterAll
  static void free() {
    arena.close();
  }

  /** The one-token Q8_0 and Q4_0 kernels' forms this CPU runs: AVX2 always (the kernels need it), VNNI where it has it. */
  private static List<NativeKernels> q8Forms(int threads) {
    List<NativeKernels> forms = new ArrayList<>(List.of(new NativeKernels(library, threads, false, true, false)));
    if (library.hasVnni()) {
      forms.add(new NativeKernels(library, threads, true, true, false));
    }
    return forms;
  }

  /**
   * The several-token Q8_0 kernel's forms this CPU runs: AMX where it has it, VNNI where it has that;
   * without either, kernels whose products of several tokens go to the vector kernels.
   */
  private static List<NativeKernels> severalTokenForms(int threads) {
    List<NativeKernels> forms = new ArrayList<>();
    if (library.hasAmx()) {
      forms.add(new NativeKernels(library, threads, true, true, false));
    }
    if (library.hasVnni()) {
      forms.add(new NativeKernels(library, threads, true, false, false));
    }
    if (forms.isEmpty()) {
      forms.add(new NativeKernels(library, threads, true, true, false));
    }
    return forms;
  }

  @ParameterizedTest(name = "{0}")
  @EnumSource(value = WeightFormat.class, names = {"Q8_0", "Q4_0"})
  void oneTokenProductsAreTheRestatedArithmeticBitForBitOnEveryFormAndThreadCount(WeightFormat format) {
    Matrix full = format.convert(floatMatrix(517 + 5, 768 + 64, 11), arena);
    float[] x = randomFloats(3 + 768 + 64, 12, 1f);
    for (int threads : new int[] {1, 2}) {
      for (NativeKernels kernels : q8Forms(threads)) {
        try (kernels) {
          for (int rows : ROWS) {
            for (int cols : new int[] {768, 736}) { // 24 and 23 blocks: Q4_0 pairs its blocks
              // a view: rows from the fifth, columns from the third block, so stride and offset are not the plain ones
              Matrix w = full.rowSlice(5, 5 + rows).colSlice(64, 64 + cols);
              assertThat(kernels.runsNatively(w, 1)).isTrue();
              Q8Activations a = quantized(x, 3, cols);
              float[] expected = NativeReference.blockMatvec(w, a.values(), a.scales());
              float[] out = new float[rows + 9];
              Arrays.fill(out, -7f);
              kernels.matmul(w, x, 3, out, 4, 1);
              assertThat(Arrays.copyOfRange(out, 4, 4 + rows))
                  .as("%s: %d rows, %d columns, %d threads", kernels.name(), rows, cols, threads).containsExactly(expected);
              assertThat(Arrays.copyOfRange(out, 0, 4)).containsOnly(-7f);
              assertThat(Arrays.copyOfRange(out, 4 + rows, out.length)).containsOnly(-7f);
            }
          }
        }
      }
    }
  }

  /**
   * Several tokens on AMX (Q8_0) and on VNNI (Q8_0, Q4_0): the restated arithmetic bit for bit, for
   * groups of 16 (AMX) and 12 (VNNI) rows and a last shorter one, tiles of 16 tokens and a last
   * shorter one, on a view (stride and offset not the plain ones), with outputs beside the call's
   * left alone. Without either the vector kernels take them.
   */
  @ParameterizedTest(name = "{0}")
  @EnumSource(value = WeightFormat.class, names = {"Q8_0", "Q4_0"})
  void productsOfSeveralTokensAreTheRestatedArithmeticBitForBit(WeightFormat format) {
    Matrix full = format.convert(floatMatrix(517 + 5, 768 + 64, 51), arena);
    int cols = 768;
    float[] x = randomFloats(3 + 40 * cols, 52, 1f);
    for (int threads : new int[] {1, 2}) {
      for (NativeKernels kernels : severalTokenForms(threads)) {
        try (kernels) {
          boolean runsNatively = format == WeightFormat.Q8_0 ? !kernels.severalTokensForm().equals("vector")
              : library.hasVnni();
          for (int rows : new int[] {1, 11, 12, 13, 15, 16, 17, 67, 517}) {
            Matrix w = full.rowSlice(5, 5 + rows).colSlice(64, 64 + cols);
            for (int tokens : new int[] {2, 15, 16, 17, 40}) {
              assertThat(kernels.runsNatively(w, tokens)).isEqualTo(runsNatively);
              Q8Activations a = quantized(x, 3, tokens * cols);
              float[] expected = runsNatively ? NativeReference.blockMatmul(w, a.values(), a.scales(), tokens)
                  : vectorProduct(w, x, 3, tokens);
              float[] out = new float[tokens * rows + 9];
              Arrays.fill(out, -7f);
              kernels.matmul(w, x, 3, out, 4, tokens);
              assertThat(Arrays.copyOfRange(out, 4, 4 + tokens * rows))
                  .as("%s %s: %d rows, %d tokens, %d threads", format, kernels.severalTokensForm(), rows, tokens, threads)
                  .containsExactly(expected);
              assertThat(Arrays.copyOfRange(out, 0, 4)).containsOnly(-7f);
              assertThat(Arrays.copyOfRange(out, 4 + tokens * rows, out.length)).containsOnly(-7f);
            }
          }
        }
      }
    }
  }

  /** The fast forms run wherever the CPU has them (else every test above would pass on the fallbacks alone). */
  @Test
  void theKernelsUseWhatTheCpuReports() throws IOException {
    String flags = Files.readAllLines(Path.of("/proc/cpuinfo")).stream().filter(l -> l.startsWith("flags"))
        .findFirst().orElseThrow();
    List<String> words = List.of(flags.split("\\s+"));
    assertThat(library.hasVnni()).as("VNNI").isEqualTo(words.contains("avx512_vnni"));
    assertThat(library.hasAmx()).as("AMX").isEqualTo(words.contains("amx_int8"));
    assertThat(library.runsHalf()).as("AVX-512").isEqualTo(words.contains("avx512bw") && words.contains("avx512vl"));
    assertThat(library.hasBf16()).as("AVX512_BF16")
        .isEqualTo(words.contains("avx512_bf16") && words.contains("avx512bw") && words.contains("avx512vl"));
    try (NativeKernels kernels = new NativeKernels(library, 1, true, true, false)) {
      assertThat(kernels.severalTokensForm()).as("several tokens")
          .isEqualTo(words.contains("amx_int8") ? "amx" : words.contains("avx512_vnni") ? "vnni" : "vector");
    }
  }

  /**
   * {@code auto}, the default set, is these kernels wherever they run (a CPU with AVX2 and a C
   * compiler); for Q8_0 and Q4_0 weights, with BF16 prompts where the CPU has AVX512_BF16.
   */
  @ParameterizedTest(name = "{0}")
  @EnumSource(value = WeightFormat.class, names = {"STORED", "F16", "BF16", "Q8_0", "Q4_0"})
  void autoTakesTheNativeKernelsWhereTheyRun(WeightFormat weights) {
    boolean bf16Prompts = (weights == WeightFormat.Q8_0 || weights == WeightFormat.Q4_0) && library.hasBf16();
    try (NativeKernels kernels = (NativeKernels) KernelsProvider.create(KernelsProvider.KernelSet.AUTO, 2, weights)) {
      assertThat(kernels.name())
          .isEqualTo((library.hasVnni() ? "native-vnni" : "native-avx2") + (bf16Prompts ? "-bf16" : ""));
    }
  }

  private static float[] vectorProduct(Matrix w, float[] x, int xOffset, int tokens) {
    float[] out = new float[tokens * w.rows()];
    try (VectorKernels vector = new VectorKernels(1)) {
      vector.matmul(w, x, xOffset, out, 0, tokens);
    }
    return out;
  }

  /**
   * The result is the Q8_0 product: each activation rounded to its block's step differs from its
   * float value by at most 0.5 step (q) plus 127 steps times F16's relative error 2^-11 (the scale),
   * so the product differs from the float activations' (the vector kernels') by at most the sum of
   * |w| times that per block, plus float32 rounding.
   */
  @ParameterizedTest(name = "{0}")
  @EnumSource(value = WeightFormat.class, names = {"Q8_0", "Q4_0"})
  void productsStayWithinTheActivationsRoundingOfTheVectorKernelsProduct(WeightFormat format) {
    Matrix w = format.convert(floatMatrix(300, 2048, 21), arena);
    float[] x = randomFloats(2048, 22, 3f);
    float[] floatProduct = new float[300];
    float[] nativeProduct = new float[300];
    try (VectorKernels vector = new VectorKernels(1); NativeKernels kernels = new NativeKernels(library, 2, true, true, false)) {
      vector.matmul(w, x, 0, floatProduct, 0, 1);
      kernels.matmul(w, x, 0, nativeProduct, 0, 1);
    }
    for (int r = 0; r < 300; r++) {
      double bound = 0;
      double magnitude = 0;
      for (int b = 0; b < 64; b++) {
        float amax = 0;
        for (int j = 0; j < 32; j++) {
          amax = Math.max(amax, Math.abs(x[32 * b + j]));
        }
        double step = amax / 127.0;
        for (int j = 0; j < 32; j++) {
          double weight = Math.abs(w.get(r, 32 * b + j));
          bound += weight * step * (0.5 + 127 * 0x1p-11);
          magnitude += weight * Math.abs(x[32 * b + j]);
        }
      }
      assertThat((double) Math.abs(nativeProduct[r] - floatProduct[r])).as("row %d", r)
          .isLessThanOrEqualTo(bound + 1e-5 * magnitude);
    }
    assertThat(nativeProduct).as("the activations really are rounded").isNotEqualTo(floatProduct);
  }

  @Test
  void aWeightOfMinus128IsMultipliedAsMinus128() {
    // llama.cpp's quantizer never writes -128, but a Q8_0 row may hold it; |q| is taken unsigned
    MemorySegment data = arena.allocate(4 * 34);
    for (int r = 0; r < 4; r++) {
      data.set(HALF, 34L * r, Float.floatToFloat16(0.5f));
      for (int j = 0; j < 32; j++) {
        data.set(ValueLayout.JAVA_BYTE, 34L * r + 2 + j, (byte) (j % 2 == 0 ? -128 : 127 - r));
      }
    }
    Matrix w = new Matrix("min", data, DType.Q8_0, 4, 32, 32, 0);
    float[] x = new float[32];
    for (int j = 0; j < 32; j++) {
      x[j] = j % 4 == 0 ? -127f : j % 4 == 1 ? 127f : 3f; // scale 1 exactly, q = x
    }
    for (NativeKernels kernels : q8Forms(1)) {
      try (kernels) {
        float[] out = new float[4];
        kernels.matmul(w, x, 0, out, 0, 1);
        for (int r = 0; r < 4; r++) {
          assertThat(out[r]).as("row %d", r).isEqualTo(0.5f * minusOneTwentyEightSum(r, x, 0));
        }
      }
    }
    // several tokens: the second is the first negated (-127 and 127 swap)
    float[] twoTokens = new float[64];
    for (int j = 0; j < 32; j++) {
      twoTokens[j] = x[j];
      twoTokens[32 + j] = -x[j];
    }
    for (NativeKernels kernels : severalTokenForms(1)) {
      try (kernels) {
        float[] out = new float[8];
        kernels.matmul(w, twoTokens, 0, out, 0, 2);
        for (int t = 0; t < 2; t++) {
          for (int r = 0; r < 4; r++) {
            assertThat(out[4 * t + r]).as("%s: token %d, row %d", kernels.severalTokensForm(), t, r)
                .isEqualTo(0.5f * minusOneTwentyEightSum(r, twoTokens, 32 * t));
          }
        }
      }
    }
  }

  /** Row r of aWeightOfMinus128IsMultipliedAsMinus128's matrix times the 32 activations from {@code from}, exactly. */
  private static long minusOneTwentyEightSum(int r, float[] x, int from) {
    long sum = 0;
    for (int j = 0; j < 32; j++) {
      sum += (long) (j % 2 == 0 ? -128 : 127 - r) * (long) x[from + j];
    }
    return sum;
  }

  @Test
  void activationsAreQuantizedAsLlamaCppQuantizesThemOnX86() {
    float[] x = new float[64];
    x[0] = 127f; // the block's largest magnitude: its step is exactly 1
    x[1] = 2.5f; // ties go to the even neighbour (llama.cpp rounds with _MM_ROUND_NEAREST)
    x[2] = 3.5f;
    x[3] = -2.5f;
    x[4] = -0.49f;
    x[5] = 100.7f;
    // the second block is all zeros: scale 0, every q 0
    Q8Activations a = new Q8Activations(library);
    a.quantize(x, 0, 64);
    assertThat(Arrays.copyOf(a.values(), 6)).containsExactly(127, 2, 4, -2, 0, 101);
    assertThat(a.scales()[0]).isEqualTo(1f);
    assertThat(Arrays.copyOfRange(a.values(), 32, 64)).containsOnly((byte) 0);
    assertThat(a.scales()[1]).isZero();
    // the stored scale is the F16 rounding of max/127
    float[] y = randomFloats(32, 5, 1f);
    a.quantize(y, 0, 32);
    float amax = 0;
    for (float v : y) {
      amax = Math.max(amax, Math.abs(v));
    }
    assertThat(a.scales()[0]).isEqualTo(Float.float16ToFloat(Float.floatToFloat16(amax / 127f)))
        .isNotEqualTo(amax / 127f);
    // and the C quantizer is the Java restatement bit for bit, on blocks of every magnitude (F16
    // scales from 0, below its least subnormal, to infinity, past its largest), read from an offset
    SplittableRandom random = new SplittableRandom(6);
    float[] z = new float[3 + 32 * 400];
    for (int b = 0; b < 400; b++) {
      float magnitude = (float) Math.pow(2, -30 + b % 56);
      for (int j = 0; j < 32; j++) {
        z[3 + 32 * b + j] = b % 7 == 0 && j > 0 ? z[3 + 32 * b] * j / 4f : (float) random.nextGaussian() * magnitude;
      }
    }
    a.quantize(z, 3, 32 * 400);
    byte[] q = new byte[32 * 400];
    float[] d = new float[400];
    NativeReference.quantize(z, 3, 32 * 400, q, d);
    assertThat(d).contains(0f, Float.POSITIVE_INFINITY);
    assertThat(Arrays.copyOf(a.values(), 32 * 400)).containsExactly(q);
    assertThat(Arrays.copyOf(a.scales(), 400)).containsExactly(d);
  }

  /**
   * F16 and BF16 products of one token and of a few (the several-token kernel's groups of 4 rows by
   * 6 tokens, short ones included, up to {@link NativeKernels#HALF_MAX_TOKENS}) against
   * double-precision sums of the widened weights: float32 accumulation over 2,048 columns, nothing
   * more (on a CPU without AVX-512 the vector kernels take them, to the same bound).
   */
  @ParameterizedTest(name = "{0}")
  @EnumSource(value = WeightFormat.class, names = {"F16", "BF16"})
  void halfPrecisionProductsAgreeWithDoublePrecisionSums(WeightFormat format) {
    int cols = 2048;
    Matrix full = format.convert(floatMatrix(517 + 3, cols + 64, 31), arena);
    int maxTokens = NativeKernels.HALF_MAX_TOKENS;
    float[] x = randomFloats(maxTokens * cols + 1, 32, 2f);
    for (int threads : new int[] {1, 2}) {
      try (NativeKernels kernels = new NativeKernels(library, threads, true, true, false)) {
        for (int rows : ROWS) {
          Matrix w = full.rowSlice(3, 3 + rows).colSlice(32, 32 + cols);
          for (int tokens : new int[] {1, 2, 7, maxTokens}) {
            if (tokens > 7 && rows > 64) {
              continue; // the double sums of 32 tokens x 517 rows take longer than they teach
            }
            assertThat(kernels.runsNatively(w, tokens)).isEqualTo(library.runsHalf());
            float[] out = new float[tokens * rows];
            kernels.matmul(w, x, 1, out, 0, tokens);
            for (int t = 0; t < tokens; t++) {
              for (int r = 0; r < rows; r++) {
                double sum = 0;
                double magnitude = 0;
                for (int c = 0; c < cols; c++) {
                  sum += (double) w.get(r, c) * x[1 + t * cols + c];
                  magnitude += Math.abs((double) w.get(r, c) * x[1 + t * cols + c]);
                }
                assertThat((double) out[t * rows + r]).as("token %d of %d, row %d of %d, %d threads", t, tokens, r,
                    rows, threads).isCloseTo(sum, org.assertj.core.data.Offset.offset(magnitude * 0x1p-18));
              }
            }
          }
          assertThat(kernels.runsNatively(w, maxTokens + 1)).as("more tokens: the vector kernels").isFalse();
        }
      }
    }
  }

  /**
   * native-bf16's BF16 products of more than {@link NativeKernels#HALF_MAX_TOKENS} tokens (the
   * kernel's groups of 6 rows by 4 tokens, short ones included; 1 and 2 threads; a view) against
   * double-precision sums of the weights times the activations rounded to BF16 to nearest even:
   * float32 accumulation, nothing more. Against the float activations they are further off (the
   * rounding is real), and F16 weights stay on the vector kernels. Refused without AVX512_BF16.
   */
  @Test
  void bf16ProductsOfPromptsRoundTheActivationsToBf16() {
    if (!library.hasBf16()) {
      assertThatThrownBy(() -> new NativeKernels(library, 1, true, true, true))
          .isInstanceOf(NativeKernelsUnavailableException.class).hasMessageContaining("AVX512_BF16");
      return;
    }
    int cols = 2048;
    Matrix full = WeightFormat.BF16.convert(floatMatrix(131 + 3, cols + 64, 33), arena);
    Matrix f16 = f16Matrix(64, cols, 34);
    float[] x = randomFloats(70 * cols + 1, 35, 2f);
    double worstAgainstFloats = 0;
    for (int threads : new int[] {1, 2}) {
      try (NativeKernels kernels = new NativeKernels(library, threads, true, true, true)) {
        Matrix w = full.rowSlice(3, 3 + 131).colSlice(32, 32 + cols);
        assertThat(kernels.runsNatively(f16, 40)).as("F16, 40 tokens").isFalse();
        for (int tokens : new int[] {NativeKernels.HALF_MAX_TOKENS + 1, 70}) {
          assertThat(kernels.runsNatively(w, tokens)).isTrue();
          float[] out = new float[tokens * w.rows()];
          kernels.matmul(w, x, 1, out, 0, tokens);
          for (int t = 0; t < tokens; t++) {
            for (int r = 0; r < w.rows(); r++) {
              double sum = 0;
              double exact = 0;
              double magnitude = 0;
              for (int c = 0; c < cols; c++) {
                float a = x[1 + t * cols + c];
                sum += (double) w.get(r, c) * bf16(a);
                exact += (double) w.get(r, c) * a;
                magnitude += Math.abs((double) w.get(r, c) * a);
              }
              assertThat((double) out[t * w.rows() + r]).as("token %d of %d, row %d, %d threads", t, tokens, r,
                  threads).isCloseTo(sum, org.assertj.core.data.Offset.offset(magnitude * 0x1p-18));
              worstAgainstFloats = Math.max(worstAgainstFloats, Math.abs(out[t * w.rows() + r] - exact) / magnitude);
            }
          }
        }
      }
    }
    assertThat(worstAgainstFloats).as("relative to the float activations' products").isGreaterThan(0x1p-14);
  }

  /** {@code value} rounded to BF16 to nearest even (finite values). */
  private static float bf16(float value) {
    int bits = Float.floatToRawIntBits(value);
    return Float.intBitsToFloat((bits + 0x7FFF + ((bits >>> 16) & 1)) & 0xFFFF0000);
  }

  @Test
  void everyOtherCallIsTheVectorKernelsCall() {
    Matrix f32 = WeightFormat.MAPPED.convert(floatMatrix(70, 96, 41), arena);
    Matrix bf16 = WeightFormat.BF16.convert(floatMatrix(70, 96, 42), arena); // as F16
    Matrix oddF16 = f16Matrix(70, 40, 43); // columns not a multiple of 32
    Matrix oddBf16 = WeightFormat.BF16.convert(floatMatrix(70, 40, 48), arena);
    Matrix q8 = q8Matrix(70, 96, 44); // several tokens: on AMX or VNNI where the CPU has either
    Matrix q4 = WeightFormat.Q4_0.convert(floatMatrix(70, 96, 46), arena); // several tokens: on VNNI where the CPU has it
    Matrix f16 = f16Matrix(70, 96, 47); // up to 32 tokens on AVX-512, more on the vector kernels
    int manyTokens = NativeKernels.HALF_MAX_TOKENS + 1;
    float[] x = randomFloats(manyTokens * 96, 45, 1f);
    try (NativeKernels kernels = new NativeKernels(library, 2, true, true, false); VectorKernels vector = new VectorKernels(2)) {
      for (Matrix w : List.of(f32, bf16, oddF16, oddBf16, q8, q4, f16)) {
        for (int tokens : new int[] {1, 2, 3, manyTokens}) {
          if (kernels.runsNatively(w, tokens)) {
            assertThat(w.dtype()).isIn(DType.Q8_0, DType.Q4_0, DType.F16, DType.BF16);
            assertThat(w).isNotIn(oddF16, oddBf16);
            assertThat(tokens == 1 || (w.dtype() == DType.Q8_0 ? !kernels.severalTokensForm().equals("vector")
                : w.dtype() == DType.Q4_0 ? library.hasVnni() : library.runsHalf())).isTrue();
            continue;
          }
          float[] expected = new float[tokens * w.rows()];
          float[] out = new float[tokens * w.rows()];
          vector.matmul(w, x, 0, expected, 0, tokens);
          kernels.matmul(w, x, 0, out, 0, tokens);
          assertThat(out).as("%s, %d tokens", w.dtype(), tokens).containsExactly(expected);
        }
      }
    }
  }

  @Test
  void theCompiledLibraryIsKeptAndFoundAgain(@TempDir Path cache) throws IOException {
    Path first = NativeCpuLibrary.compiled(cache, "cc");
    FileTime written = Files.getLastModifiedTime(first);
    Path again = NativeCpuLibrary.compiled(cache, "cc");
    assertThat(again).isEqualTo(first);
    assertThat(Files.getLastModifiedTime(again)).isEqualTo(written);
    try (var files = Files.list(first.getParent())) {
      assertThat(files.map(p -> p.getFileName().toString())).as("no temporary files left").containsExactly(
          "libowlery_cpu.so");
    }
  }

  @Test
  void aMissingOrFailingCompilerIsNamedWithWhatToInstall(@TempDir Path cache) {
    assertThatThrownBy(() -> NativeCpuLibrary.compiled(cache, "/nonexistent/cc"))
        .isInstanceOf(NativeKernelsUnavailableException.class)
        .hasMessageContaining("/nonexistent/cc cannot be run").hasMessageContaining("apt-get install gcc");
    assertThatThrownBy(() -> NativeCpuLibrary.compiled(cache, "false"))
        .isInstanceOf(NativeKernelsUnavailableException.class).hasMessageContaining("false --version failed (exit 1)");
  }

  private static Q8Activations quantized(float[] x, int offset, int size) {
    Q8Activations a = new Q8Activations(library);
    a.quantize(x, offset, size);
    return a;
  }

  private static float[] randomFloats(int n, long seed, float scale) {
    SplittableRandom random = new SplittableRandom(seed);
    float[] values = new float[n];
    for (int i = 0; i < n; i++) {
      values[i] = (float) ((random.nextDouble() * 2 - 1) * scale);
    }
    return values;
  }

  private static Matrix floatMatrix(int rows, int cols, long seed) {
    return new Matrix("w", MemorySegment.ofArray(randomFloats(rows * cols, seed, 0.1f)), DType.F32, rows, cols, cols, 0);
  }

  private static Matrix q8Matrix(int rows, int cols, long seed) {
    return WeightFormat.Q8_0.convert(floatMatrix(rows, cols, seed), arena);
  }

  private static Matrix f16Matrix(int rows, int cols, long seed) {
    return WeightFormat.F16.convert(floatMatrix(rows, cols, seed), arena);
  }
}
