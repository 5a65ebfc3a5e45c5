package dev.owlery.engine.cuda.check;

import dev.owlery.engine.cuda.runtime.CudaDriverDevice;
import dev.owlery.engine.cuda.runtime.NoDeviceException;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import jcuda.CudaException;

/** What the GPU checks share: their output folder, device 0 and its failures as exit codes, their result files. */
final class CheckRuns {

  /** A check's work on the opened device, returning the check's exit status. */
  interface OnDevice {
    int run(CudaDriverDevice gpu);
  }

  private CheckRuns() {}

  /** Creates the output folder; false, after one line saying why, when it cannot be made. */
  static boolean createFolder(Path folder, PrintStream out) {
    try {
      Files.createDirectories(folder);
      return true;
    } catch (IOException e) {
      out.println("cannot create the output folder " + folder + ": " + e.getMessage());
      return false;
    }
  }

  /**
   * Runs {@code check} on device 0: without a device one line "no CUDA device: ..." (printed and
   * written as the folder's summary.txt) and {@link KernelCheck#EXIT_NO_DEVICE}; a CUDA error outside
   * the check's own cases (creating the context, loading a module, releasing them) one line and
   * {@link KernelCheck#EXIT_FAILED}.
   */
  static int onDevice(Path folder, PrintStream out, OnDevice check) {
    try (CudaDriverDevice gpu = CudaDriverDevice.open()) {
      return check.run(gpu);
    } catch (NoDeviceException e) {
      String line = "no CUDA device: " + e.getMessage();
      out.println(line);
      write(folder.resolve("summary.txt"), List.of(line));
      return KernelCheck.EXIT_NO_DEVICE;
    } catch (CudaException e) {
      out.println("CUDA error: " + e.getMessage());
      return KernelCheck.EXIT_FAILED;
    }
  }

  static void write(Path file, List<String> lines) {
    try {
      Files.write(file, lines);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + file, e);
    }
  }

  /** A JSON number; NaN (a kernel that produced NaN) becomes null. */
  static String number(double value) {
    return Double.isFinite(value) ? String.format(Locale.ROOT, "%.6g", value) : "null";
  }
}
