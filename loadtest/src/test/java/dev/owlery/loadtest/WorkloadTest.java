package dev.owlery.loadtest;

import static org.assertj.core.api.Assertions.assertThat;

import dev.owlery.proto.v1.GenerateRequest;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.LongStream;
import org.junit.jupiter.api.Test;

/** The same seed gives the same requests and arrival times; another seed gives others. */
class WorkloadTest {

  private static final GenerateRequest PROTOTYPE = GenerateRequest.newBuilder().setMaxNewTokens(8).build();

  private static List<GenerateRequest> synthetic(long seed) {
    Workload workload = Workload.synthetic(new LengthDistribution.Uniform(4, 12), new LengthDistribution.Normal(8, 3),
        512, Workload.Pictures.NONE, PROTOTYPE, seed);
    return LongStream.range(0, 50).mapToObj(i -> workload.request(1, i)).toList();
  }

  private static List<Long> arrivals(long seed) {
    Arrivals arrivals = new Arrivals(new Load.Rate(10, 0.5), seed);
    List<Long> times = new ArrayList<>();
    for (int i = 0; i < 50; i++) {
      times.add(arrivals.next());
    }
    return times;
  }

  @Test
  void sameSeedSameRequestsAndArrivals() {
    assertThat(synthetic(7)).isEqualTo(synthetic(7)).isNotEqualTo(synthetic(8));
    assertThat(arrivals(7)).isEqualTo(arrivals(7)).isNotEqualTo(arrivals(8));
    assertThat(arrivals(7).getFirst()).isZero();
  }

  @Test
  void syntheticPromptsFollowTheirLengthDistributions() {
    for (GenerateRequest request : synthetic(3)) {
      List<Integer> ids = request.getPromptTokenIds().getTokenIdsList();
      assertThat(ids).hasSizeBetween(4, 12);
      assertThat(ids.getFirst()).isEqualTo(Workload.BOS_ID);
      assertThat(ids.subList(1, ids.size())).allSatisfy(id -> assertThat(id).isBetween(3, 511));
      assertThat(request.getMaxNewTokens()).isPositive();
    }
    assertThat(synthetic(3).stream().map(r -> r.getPromptTokenIds().getTokenIdsCount()).distinct()).hasSizeGreaterThan(3);
  }

  @Test
  void gammaIntervalsHaveMeanOneOverRateAndShapeBurstiness() {
    for (double burstiness : new double[] {0.5, 1, 4}) {
      Arrivals arrivals = new Arrivals(new Load.Rate(100, burstiness), 11);
      int n = 20_000;
      double[] gaps = new double[n];
      long previous = arrivals.next();
      for (int i = 0; i < n; i++) {
        long next = arrivals.next();
        gaps[i] = (next - previous) / 1e9;
        previous = next;
      }
      double mean = java.util.Arrays.stream(gaps).average().orElseThrow();
      double variance = java.util.Arrays.stream(gaps).map(g -> (g - mean) * (g - mean)).sum() / (n - 1);
      // Gamma(k, 1 / (rate k)): mean 1 / rate, squared coefficient of variation 1 / k. With 20,000
      // samples the standard errors are under 1% (mean) and 3% (variance) at these shapes.
      assertThat(mean).as("mean gap at burstiness %s", burstiness).isBetween(0.0097, 0.0103);
      assertThat(variance / (mean * mean)).as("CV^2 at burstiness %s", burstiness)
          .isBetween(0.9 / burstiness, 1.1 / burstiness);
    }
  }

  @Test
  void lengthDistributionsParseOrSayWhatTheyTake() {
    assertThat(LengthDistribution.parse("--input-tokens", "uniform:4:12")).isEqualTo(new LengthDistribution.Uniform(4, 12));
    assertThat(LengthDistribution.parse("--input-tokens", "normal:128:16")).isEqualTo(new LengthDistribution.Normal(128, 16));
    org.assertj.core.api.Assertions.assertThatThrownBy(() -> LengthDistribution.parse("--input-tokens", "uniform:9:3"))
        .hasMessage("--input-tokens must be fixed:N, uniform:MIN:MAX (1 <= MIN <= MAX) or normal:MEAN:STDDEV "
            + "(MEAN >= 1, STDDEV >= 0), got 'uniform:9:3'");
  }
}
