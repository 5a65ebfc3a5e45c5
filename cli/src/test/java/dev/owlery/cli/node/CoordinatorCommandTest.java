package dev.owlery.cli.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.owlery.coordinator.CoordinatorConfig;
import dev.owlery.coordinator.api.ApiLimits;
import dev.owlery.coordinator.http.HttpApiConfig;
import dev.owlery.coordinator.placement.ImageEmbeddingCache;
import dev.owlery.coordinator.placement.PlacementConfig;
import dev.owlery.coordinator.placement.ServingProfile;
import dev.owlery.coordinator.scheduler.SchedulerConfig;
import dev.owlery.engine.kv.KvCacheDtype;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/** Every serving option of {@code owlery coordinator} reaches the coordinator's configuration. */
class CoordinatorCommandTest {

  private static CoordinatorConfig configOf(String... args) {
    CoordinatorCommand command = new CoordinatorCommand();
    new CommandLine(command).parseArgs(args);
    return command.config();
  }

  @Test
  void servingOptionsReachTheConfiguration() {
    CoordinatorConfig config = configOf("--node-id", "coordinator-0", "--model", "/models/owl", "--group-size", "2",
        "--max-num-seqs", "8", "--max-num-batched-tokens", "256", "--block-size", "32", "--kv-cache-tokens", "4096",
        "--kv-cache-dtype", "f32", "--max-queued", "5", "--max-admitted", "40", "--image-cache-bytes", "1048576",
        "--http-port", "8081", "--http-image-url-prefix", "https://images.example.com/a/,https://cdn.example.com/");

    assertThat(config.placement().worldSize()).isEqualTo(2);
    assertThat(config.placement().maxNumSequences()).isEqualTo(8);
    assertThat(config.placement().maxNumTokens()).isEqualTo(256);
    assertThat(config.placement().blockSizeTokens()).isEqualTo(32);
    assertThat(config.placement().kvCacheTokens()).isEqualTo(4096);
    assertThat(config.placement().kvCacheDtype()).isEqualTo(KvCacheDtype.F32);
    assertThat(config.scheduler().maxQueuedPerGroup()).isEqualTo(5);
    assertThat(config.limits().maxAdmittedRequests()).isEqualTo(40);
    assertThat(config.imageCacheBytes()).isEqualTo(1 << 20);
    assertThat(config.http()).isEqualTo(HttpApiConfig.onPort(8081).withImageUrlPrefixes(
        List.of("https://images.example.com/a/", "https://cdn.example.com/")));
  }

  @Test
  void withoutOptionsTheDefaultsOfTheLibraryApply() {
    CoordinatorConfig config = configOf("--node-id", "coordinator-0", "--model", "/models/owl");

    assertThat(config.limits()).isEqualTo(ApiLimits.defaults());
    assertThat(config.imageCacheBytes()).isEqualTo(ImageEmbeddingCache.DEFAULT_MAX_BYTES);
    assertThat(config.http()).as("no HTTP API unless asked").isEqualTo(HttpApiConfig.OFF);
    assertThat(config.scheduler()).isEqualTo(SchedulerConfig.defaults());
    assertThat(config.placement()).isEqualTo(PlacementConfig.of(1, Path.of("/models/owl").toAbsolutePath().toString()));
    assertThat(config.placement().kvCacheDtype()).isEqualTo(KvCacheDtype.F16);
  }

  @Test
  void theGpuProfileBatchesLikeVllmOnAGpuAndTheBatchFlagsStillWin() {
    CoordinatorConfig gpu = configOf("--node-id", "coordinator-0", "--model", "/models/owl", "--profile", "gpu");
    CoordinatorConfig gpuFewer = configOf("--node-id", "coordinator-0", "--model", "/models/owl", "--profile", "GPU",
        "--max-num-seqs", "64");
    CoordinatorConfig cpu = configOf("--node-id", "coordinator-0", "--model", "/models/owl", "--profile", "cpu");

    assertThat(gpu.placement().maxNumSequences()).isEqualTo(256);
    assertThat(gpu.placement().maxNumTokens()).isEqualTo(8192);
    assertThat(gpu.scheduler().profile()).isEqualTo(ServingProfile.GPU);
    assertThat(gpuFewer.placement().maxNumSequences()).isEqualTo(64);
    assertThat(gpuFewer.placement().maxNumTokens()).isEqualTo(8192);
    assertThat(cpu.placement()).isEqualTo(PlacementConfig.of(1, Path.of("/models/owl").toAbsolutePath().toString()));
    assertThat(cpu.scheduler()).isEqualTo(SchedulerConfig.defaults());
    assertThatThrownBy(() -> configOf("--node-id", "coordinator-0", "--model", "/models/owl", "--profile", "tpu"))
        .isInstanceOf(IllegalArgumentException.class).hasMessage("--profile must be cpu or gpu. Given: tpu");
  }
}
