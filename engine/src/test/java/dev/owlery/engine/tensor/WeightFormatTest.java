package dev.owlery.engine.tensor;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.owlery.engine.testing.Fixtures;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** Load-time weight conversion: Q8_0 byte for byte as llama.cpp quantizes, and the views it allows. */
class WeightFormatTest {



  private final Arena arena = Arena.ofShared();

  @AfterEach
  void close() {
    arena.close();
  }

  private Matrix referenceInput() throws IOException {
    byte[] bytes = Files.readAllBytes(Fixtures.require("quantization/input.f32"));
    MemorySegment data = arena.allocate(bytes.length);
    MemorySegment.copy(MemorySegment.ofArray(bytes), 0, data, 0, bytes.length);
    return new Matrix("input", data, DType.F32, 8, 128, 128, 0);
  }

  @Test
  void q8_0IsByteForByteWhatLlamaCppWrites() throws IOException {
    Matrix input = referenceInput();
    Matrix quantized = WeightFormat.Q8_0.convert(input, arena);
    byte[] expected = Files.readAllBytes(Fixtures.require("quantization/expected.q8_0"));

    assertThat(quantized.dtype()).isEqualTo(DType.Q8_0);
    assertThat(quantized.data().byteSize()).isEqualTo(expected.length);
    assertThat(quantized.data().toArray(ValueLayout.JAVA_BYTE)).containsExactly(expected);
  }

  @Test
  void q8_0ElementsAreScaleTimesQuantAndCloseToTheInput() throws IOException {
    Matrix input = referenceInput();
    Matrix quantized = WeightFormat.Q8_0.convert(input, arena);
    for (int r = 0; r < input.rows(); r++) {
      for (int b = 0; b < 4; b++) {
        float amax = 0f;
        for (int j = 0; j < 32; j++) {
          amax = Math.max(amax, Math.abs(input.get(r, 32 * b + j)));
        }
        double d = amax / 127.0;
        double storedD = Float.float16ToFloat(Float.floatToFloat16((float) d));
        for (int j = 0; j < 32; j++) {
          int c = 32 * b + j;
          // |d' q - x| <= |d' - d| |q| + d |q - x / d|: the F16 rounding of the scale (large where
          // d is an F16 subnormal) times at most 127, plus half a quantization step
          double bound = 127 * Math.abs(storedD - d) + d / 2 + 1e-6 * amax + 1e-30;
          assertThat((double) quantized.get(r, c)).as("row %d column %d", r, c)
              .isCloseTo(input.get(r, c), org.assertj.core.data.Offset.offset(bound));
        }
      }
    }
    assertThat(quantized.get(7, 1)).isEqualTo(63f); // 62.5 with scale 1 rounds away from zero
    assertThat(quantized.get(7, 2)).isEqualTo(-63f);
    assertThat(quantized.get(7, 40)).isEqualTo(0f); // the all-zero block
  }

  @Test
  void q4_0IsByteForByteWhatLlamaCppWrites() throws IOException {
    Matrix quantized = WeightFormat.Q4_0.convert(referenceInput(), arena);
    byte[] expected = Files.readAllBytes(Fixtures.require("quantization/expected.q4_0"));

    assertThat(quantized.dtype()).isEqualTo(DType.Q4_0);
    assertThat(quantized.data().toArray(ValueLayout.JAVA_BYTE)).containsExactly(expected);
  }

  @Test
  void q4_0ElementsAreScaleTimesNibbleMinusEight() throws IOException {
    Matrix input = referenceInput();
    Matrix quantized = WeightFormat.Q4_0.convert(input, arena);
    for (int r = 0; r < input.rows(); r++) {
      for (int b = 0; b < 4; b++) {
        float amax = 0f;
        for (int j = 0; j < 32; j++) {
          amax = Math.max(amax, Math.abs(input.get(r, 32 * b + j)));
        }
        double d = amax / 8.0;
        double storedD = Math.abs(Float.float16ToFloat(Float.floatToFloat16((float) d)));
        for (int j = 0; j < 32; j++) {
          int c = 32 * b + j;
          // 16 levels over [-8d, 7d]: within one step d of the input (truncation, not rounding, and
          // +8d clipped to 7d), plus the F16 rounding of d times at most 8
          double bound = d + 8 * Math.abs(storedD - d) + 1e-6 * amax + 1e-30;
          assertThat((double) quantized.get(r, c)).as("row %d column %d", r, c)
              .isCloseTo(input.get(r, c), org.assertj.core.data.Offset.offset(bound));
        }
      }
    }
    // 127 is the block's largest magnitude: d = -127/8, and 127 itself is the level -8 -> 0 * ... = -8 d
    assertThat(quantized.get(7, 0)).isEqualTo(Float.float16ToFloat(Float.floatToFloat16(127f / -8f)) * -8);
  }

  @Test
  void q8_0SlicesStayOnBlocks() throws IOException {
    Matrix quantized = WeightFormat.Q8_0.convert(referenceInput(), arena);

    Matrix slice = quantized.rowSlice(2, 5).colSlice(32, 96);
    assertThat(slice.get(1, 3)).isEqualTo(quantized.get(3, 35));
    assertThat(slice.rowByteOffset(1)).isEqualTo(3 * 4 * 34 + 34);
    assertThatThrownBy(() -> quantized.colSlice(16, 48))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("whole blocks of 32");
  }

  @Test
  void conversionKeepsWhatItCannotOrNeedNotConvert() throws IOException {
    Matrix input = referenceInput();
    assertThat(WeightFormat.MAPPED.convert(input, arena)).isSameAs(input);
    Matrix copied = WeightFormat.STORED.convert(input.rowSlice(1, 3).colSlice(32, 96), arena);
    assertThat(copied.data().address() % 64).as("owned copies are 64-byte aligned").isZero();
    assertThat(copied.dtype()).isEqualTo(DType.F32);
    assertThat(copied.get(1, 5)).isEqualTo(input.get(2, 37));
    Matrix odd = input.colSlice(0, 100); // 100 columns are not whole blocks: llama.cpp leaves such tensors too
    Matrix kept = WeightFormat.Q8_0.convert(odd, arena);
    assertThat(kept.dtype()).isEqualTo(DType.F32);
    assertThat(kept.get(3, 99)).isEqualTo(odd.get(3, 99));
  }

  @Test
  void f16AndBf16ConversionRoundToNearestEven() throws IOException {
    Matrix input = referenceInput();
    Matrix f16 = WeightFormat.F16.convert(input, arena);
    Matrix bf16 = WeightFormat.BF16.convert(input, arena);
    for (int r = 0; r < 8; r++) {
      for (int c = 0; c < 128; c++) {
        float x = input.get(r, c);
        assertThat(f16.get(r, c)).isEqualTo(Float.float16ToFloat(Float.floatToFloat16(x)));
        assertThat(bf16.get(r, c)).isEqualTo(Float.intBitsToFloat((WeightFormat.toBf16(x) & 0xffff) << 16));
      }
    }
  }

  @Test
  void aWidenedRowHoldsGetsValuesInEveryDtypeAndSlice() throws IOException {
    Matrix input = referenceInput();
    for (WeightFormat format : new WeightFormat[] {WeightFormat.STORED, WeightFormat.F16, WeightFormat.BF16,
        WeightFormat.Q8_0, WeightFormat.Q4_0}) {
      Matrix whole = format.convert(input, arena);
      for (Matrix view : new Matrix[] {whole, whole.rowSlice(3, 7).colSlice(32, 96)}) {
        float[] row = new float[view.cols() + 1];
        row[view.cols()] = 42f;
        for (int r = 0; r < view.rows(); r++) {
          view.widenRow(r, row);
          for (int c = 0; c < view.cols(); c++) {
            assertThat(Float.floatToRawIntBits(row[c])).as("%s (%d, %d)", whole.dtype(), r, c)
                .isEqualTo(Float.floatToRawIntBits(view.get(r, c)));
          }
          assertThat(row[view.cols()]).as("past the row").isEqualTo(42f);
        }
      }
    }
  }

  @Test
  void parseNamesTheChoices() {
    assertThat(WeightFormat.parse(" Q8_0 ")).isEqualTo(WeightFormat.Q8_0);
    assertThat(WeightFormat.parse("stored")).isEqualTo(WeightFormat.STORED);
    assertThatThrownBy(() -> WeightFormat.parse("q4_k"))
        .hasMessage("--weights must be one of mapped, stored, f16, bf16, q8_0, q4_0; got \"q4_k\"");
  }
}
