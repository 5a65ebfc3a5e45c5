package dev.owlery.visionworker;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.checkpoint.SafetensorsCheckpoint;
import dev.owlery.engine.config.ModelConfig;
import dev.owlery.engine.cuda.forward.DeviceVisionTower;
import dev.owlery.engine.cuda.runtime.CpuTwinDevice;
import dev.owlery.engine.kernel.ScalarKernels;
import dev.owlery.engine.testing.Fixtures;
import dev.owlery.engine.vision.VisionTower;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The device encoder's passes on the CPU twins of the kernels (tiny-owl2): calls queued together
 * share a pass, a call larger than a pass spans several, every image gets its own answer (the CPU
 * tower's), and a call that does not fit the queue is refused whole.
 */
class DeviceImageEncoderTest {

  private static ModelConfig config;
  private static Checkpoint model;
  private static VisionTower cpu;

  @BeforeAll
  static void open() {
    Path dir = Fixtures.tinyOwl2();
    config = ModelConfig.load(dir);
    model = SafetensorsCheckpoint.openFile(dir.resolve("model.safetensors"));
    cpu = new VisionTower(config, model, new ScalarKernels());
  }

  @AfterAll
  static void close() {
    if (model != null) {
      model.close();
    }
  }

  private static DeviceImageEncoder encoder(int maxBatchImages, int maxQueuedImages) {
    CpuTwinDevice device = new CpuTwinDevice();
    return new DeviceImageEncoder(device, new DeviceVisionTower(device, config, model, maxBatchImages),
        maxQueuedImages);
  }

  @Test
  void callsQueuedTogetherShareOnePassAndEachGetsItsOwnImagesAnswers() throws Exception {
    List<float[]> images = images(4, 1);
    try (DeviceImageEncoder encoder = encoder(4, 8)) {
      // three calls (1, 2 and 1 images) queued before the device thread starts: one pass of 4
      List<CompletableFuture<ImageEncoder.Encoded>> calls = List.of(encoder.encode(images.subList(0, 1)),
          encoder.encode(images.subList(1, 3)), encoder.encode(images.subList(3, 4)));
      encoder.start();
      List<float[]> answers = new ArrayList<>();
      for (CompletableFuture<ImageEncoder.Encoded> call : calls) {
        ImageEncoder.Encoded encoded = call.get(60, TimeUnit.SECONDS);
        assertThat(encoded.visionNs()).isPositive();
        assertThat(encoded.abstractorNs()).isPositive();
        answers.addAll(encoded.visualEmbeds());
      }
      assertThat(encoder.passes()).isEqualTo(1);
      for (int i = 0; i < images.size(); i++) {
        assertThat(answers.get(i)).as("image %d", i).containsExactly(cpu.encode(images.get(i)));
      }
    }
  }

  @Test
  void aCallWithMoreImagesThanAPassSpansSeveralInOrder() throws Exception {
    List<float[]> images = images(5, 2);
    try (DeviceImageEncoder encoder = encoder(2, 8).start()) {
      List<float[]> answers = encoder.encode(images).get(60, TimeUnit.SECONDS).visualEmbeds();

      assertThat(encoder.passes()).isEqualTo(3); // 2 + 2 + 1
      assertThat(encoder.encode(List.of()).get(1, TimeUnit.SECONDS).visualEmbeds()).isEmpty();
      assertThat(encoder.passes()).isEqualTo(3);
      assertThat(answers).hasSize(5);
      for (int i = 0; i < images.size(); i++) {
        assertThat(answers.get(i)).as("image %d", i).containsExactly(cpu.encode(images.get(i)));
      }
    }
  }

  @Test
  void aCallThatDoesNotFitTheQueueIsRefusedWhole() throws Exception {
    List<float[]> images = images(3, 3);
    try (DeviceImageEncoder encoder = encoder(2, 4)) {
      CompletableFuture<ImageEncoder.Encoded> first = encoder.encode(images.subList(0, 2));
      CompletableFuture<ImageEncoder.Encoded> refused = encoder.encode(images);

      assertThat(refused).isCompletedExceptionally();
      assertThatThrownBy(refused::get).isInstanceOf(ExecutionException.class)
          .hasCauseInstanceOf(RejectedExecutionException.class)
          .hasRootCauseMessage("2 images are waiting for the device (at most 4); these 3 do not fit");
      encoder.start();
      assertThat(first.get(60, TimeUnit.SECONDS).visualEmbeds()).hasSize(2);
      assertThat(encoder.passes()).isEqualTo(1);
    }
  }

  /** The fixture's image, then images of noise in CLIP's normalised range. */
  private static List<float[]> images(int count, long seed) {
    int n = config.vision().numChannels() * config.vision().imageSize() * config.vision().imageSize();
    SplittableRandom random = new SplittableRandom(seed);
    List<float[]> images = new ArrayList<>();
    try (Checkpoint reference = SafetensorsCheckpoint.openFile(Fixtures.tinyOwl2().resolve("reference.safetensors"))) {
      images.add(reference.tensor("pixel_values").toFloatArray());
    }
    while (images.size() < count) {
      float[] image = new float[n];
      for (int i = 0; i < n; i++) {
        image[i] = (float) random.nextDouble(-1.8, 2.1);
      }
      images.add(image);
    }
    return images;
  }
}
