package dev.owlery.cli;

import dev.owlery.engine.checkpoint.Checkpoint;
import dev.owlery.engine.checkpoint.SafetensorsCheckpoint;
import dev.owlery.engine.config.ModelConfig;
import dev.owlery.engine.kernel.Kernels;
import dev.owlery.engine.onednn.OneDnnKernels;
import dev.owlery.engine.tensor.DType;
import dev.owlery.engine.tensor.WeightFormat;
import dev.owlery.engine.vision.SyntheticVisionTower;
import dev.owlery.engine.vision.VisionTower;
import dev.owlery.visionworker.HostKernels;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;

/**
 * {@code owlery bench --synthetic-vision}: seconds per image of the vision tower and the
 * abstractor on random weights of a given geometry, per weight format, with the kernel sets and
 * thread counts taking turns image by image on one loaded tower (so that their ratios are
 * measured side by side); each figure is the median over the timed images.
 */
final class VisionBench {

  private final SyntheticVisionTower.Geometry geometry;
  private final List<WeightFormat> formats;
  private final List<HostKernels> kernelSets;
  private final List<Integer> threadCounts;
  private final int images;

  VisionBench(SyntheticVisionTower.Geometry geometry, List<WeightFormat> formats, List<HostKernels> kernelSets,
      List<Integer> threadCounts, int images) {
    this.geometry = geometry;
    this.formats = List.copyOf(formats);
    this.kernelSets = List.copyOf(kernelSets);
    this.threadCounts = List.copyOf(threadCounts);
    this.images = images;
  }

  /** Writes the random F16 tower to a temporary folder, times it, prints the table and deletes the folder. */
  void run(PrintWriter out) {
    Path dir;
    try {
      dir = Files.createTempDirectory("owlery-synthetic-vision");
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    try {
      out.printf("%nvision tower (ViT %d px / %d, %d tokens, %d layers of width %d; abstractor %d layers, %d queries), "
          + "random F16 weights; median of %d images after one to warm up, the rows taking turns image by image%n",
          geometry.imageSize(), geometry.patchSize(), tokens(), geometry.visionLayers(), geometry.visionHidden(),
          geometry.abstractorLayers(), geometry.queries(), images);
      out.flush();
      SyntheticVisionTower.write(geometry, DType.F16, 1, dir);
      ModelConfig config = ModelConfig.load(dir);
      for (WeightFormat format : formats) {
        runFormat(out, dir, config, format);
      }
    } finally {
      delete(dir, out);
    }
  }

  private int tokens() {
    int side = geometry.imageSize() / geometry.patchSize();
    return side * side + 1;
  }

  private void runFormat(PrintWriter out, Path dir, ModelConfig config, WeightFormat format) {
    List<Kernels> sets = new ArrayList<>();
    List<String> labels = new ArrayList<>();
    List<Integer> threads = new ArrayList<>();
    try (Checkpoint checkpoint = SafetensorsCheckpoint.openFile(dir.resolve("model.safetensors"))
        .withWeightFormat(format)) {
      for (HostKernels set : kernelSets) {
        for (int t : threadCounts) {
          Kernels kernels = set.create(t);
          sets.add(kernels);
          labels.add(kernels instanceof OneDnnKernels oneDnn
              ? "%s (oneDNN %s, %s)".formatted(oneDnn.name(), oneDnn.library().version(), oneDnn.library().cpuIsa())
              : kernels.name());
          threads.add(t);
        }
      }
      SwitchedKernels switching = new SwitchedKernels(sets.getFirst());
      VisionTower tower = new VisionTower(config, checkpoint, switching);
      float[] pixels = new float[tower.numPixelValues()];
      SplittableRandom random = new SplittableRandom(3);
      for (int i = 0; i < pixels.length; i++) {
        pixels[i] = (float) random.nextGaussian();
      }
      double[][] vit = new double[sets.size()][images];
      double[][] abstractor = new double[sets.size()][images];
      for (int image = -1; image < images; image++) { // image -1 warms every set up
        for (int s = 0; s < sets.size(); s++) {
          switching.select(sets.get(s));
          long start = System.nanoTime();
          float[] features = tower.encoder().forward(pixels);
          long middle = System.nanoTime();
          tower.abstractor().forward(features);
          long end = System.nanoTime();
          if (image >= 0) {
            vit[s][image] = (middle - start) / 1e9;
            abstractor[s][image] = (end - middle) / 1e9;
          }
        }
      }
      out.printf("%-42s %-7s %7s %12s %18s %10s %12s%n", "kernels", "weights", "threads", "ViT s/image",
          "abstractor s/image", "total s", "vs row 1");
      double first = BenchCommand.median(vit[0]) + BenchCommand.median(abstractor[0]);
      for (int s = 0; s < sets.size(); s++) {
        double total = BenchCommand.median(vit[s]) + BenchCommand.median(abstractor[s]);
        out.printf("%-42s %-7s %7d %12.3f %18.3f %10.3f %11.2fx%n", labels.get(s), format.flagName(), threads.get(s),
            BenchCommand.median(vit[s]), BenchCommand.median(abstractor[s]), total, first / total);
      }
      out.flush();
    } finally {
      for (Kernels kernels : sets) {
        if (kernels instanceof AutoCloseable closeable) {
          try {
            closeable.close();
          } catch (Exception e) {
            throw new IllegalStateException("closing " + kernels.name(), e);
          }
        }
      }
    }
  }


  private static void delete(Path dir, PrintWriter out) {
    try (Stream<Path> files = Files.list(dir)) {
      for (Path f : files.toList()) {
        Files.deleteIfExists(f);
      }
      Files.deleteIfExists(dir);
    } catch (IOException e) {
      out.printf("could not delete %s: %s%n", dir, e.getMessage());
    }
  }
}
