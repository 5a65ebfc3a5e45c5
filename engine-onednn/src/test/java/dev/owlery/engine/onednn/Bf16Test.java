package dev.owlery.engine.onednn;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class Bf16Test {

  /**
   * Round to nearest, ties to even, by definition: the two bfloat16 values around {@code value}
   * (its truncation and the next one up in magnitude), whichever is nearer in exact arithmetic.
   */
  private static short byDefinition(float value) {
    if (Float.isNaN(value)) {
      return (short) ((Float.floatToRawIntBits(value) >>> 16) | 0x40);
    }
    int bits = Float.floatToRawIntBits(value);
    int truncated = bits & 0xffff0000;
    if (truncated == bits) {
      return (short) (bits >>> 16);
    }
    int up = truncated + 0x10000; // next magnitude up (may be infinity)
    double exact = value;
    double low = Float.intBitsToFloat(truncated);
    double high = (up & 0x7fffffff) == 0x7f800000 ? Math.copySign(Math.scalb(1.0, 128), value) : Float.intBitsToFloat(up);
    double toLow = Math.abs(exact - low);
    double toHigh = Math.abs(high - exact);
    if (toLow < toHigh) {
      return (short) (truncated >>> 16);
    }
    if (toHigh < toLow) {
      return (short) (up >>> 16);
    }
    return (short) (((truncated >>> 16) & 1) == 0 ? truncated >>> 16 : up >>> 16);
  }

  @Test
  void roundsToNearestTiesToEvenLikeTheDefinition() {
    float[] edges = {0f, -0f, 1f, -1f, Float.MIN_VALUE, -Float.MIN_VALUE, Float.MIN_NORMAL, Float.MAX_VALUE,
        -Float.MAX_VALUE, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.NaN,
        Float.intBitsToFloat(0x3f808000), // tie, even below: stays 0x3f80
        Float.intBitsToFloat(0x3f818000), // tie, odd below: up to 0x3f82
        Float.intBitsToFloat(0x3f808001), // just above a tie: up
        Float.intBitsToFloat(0x3f807fff), // just below a tie: down
        Float.intBitsToFloat(0x7f7f8000), // tie at the largest bfloat16: to infinity (even)
        Float.intBitsToFloat(0x7fc00001), Float.intBitsToFloat(0xff800001)}; // NaNs, one signalling
    for (float value : edges) {
      assertThat(Bf16.round(value)).as("bits %08x", Float.floatToRawIntBits(value)).isEqualTo(byDefinition(value));
    }
    assertThat(Bf16.round(Float.intBitsToFloat(0x3f808000))).isEqualTo((short) 0x3f80);
    assertThat(Bf16.round(Float.intBitsToFloat(0x3f818000))).isEqualTo((short) 0x3f82);
    assertThat(Bf16.round(Float.MAX_VALUE)).isEqualTo((short) 0x7f80);
    assertThat(Float.isNaN(Float.intBitsToFloat(Bf16.round(Float.intBitsToFloat(0xff800001)) << 16))).isTrue();

    SplittableRandom random = new SplittableRandom(7);
    for (int i = 0; i < 1_000_000; i++) {
      float value = Float.intBitsToFloat(random.nextInt());
      assertThat(Bf16.round(value)).as("bits %08x", Float.floatToRawIntBits(value)).isEqualTo(byDefinition(value));
    }
  }

  @Test
  void arraysRoundAsOneValueAtATimeAtEveryLengthAndOffset() {
    SplittableRandom random = new SplittableRandom(11);
    float[] src = new float[200];
    for (int i = 0; i < src.length; i++) {
      src[i] = i % 17 == 0 ? Float.NaN : i % 13 == 0 ? Float.intBitsToFloat(0x3f818000) : Float.intBitsToFloat(random.nextInt());
    }
    for (int length = 0; length <= 70; length++) {
      for (int offset : new int[] {0, 3, 17}) {
        short[] dst = new short[length + 5];
        java.util.Arrays.fill(dst, (short) 0x1234);
        Bf16.round(src, offset, dst, 2, length);
        for (int i = 0; i < dst.length; i++) {
          short expected = i >= 2 && i < 2 + length ? Bf16.round(src[offset + i - 2]) : (short) 0x1234;
          assertThat(dst[i]).as("length %d offset %d element %d", length, offset, i).isEqualTo(expected);
        }
      }
    }
  }
}
