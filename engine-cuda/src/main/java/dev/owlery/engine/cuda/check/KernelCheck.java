package dev.owlery.engine.cuda.check;

import static dev.owlery.engine.cuda.check.CheckRuns.createFolder;
import static dev.owlery.engine.cuda.check.CheckRuns.number;
import static dev.owlery.engine.cuda.check.CheckRuns.onDevice;
import static dev.owlery.engine.cuda.check.CheckRuns.write;

import dev.owlery.engine.cuda.check.KernelCase.Expected;
import dev.owlery.engine.cuda.check.KernelCase.Tolerance;
import dev.owlery.engine.cuda.runtime.CudaDriverDevice;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import jcuda.CudaException;

/**
 * Runs every kernel on device 0 against the engine's CPU code and writes the result into a folder:
 * {@code kernels.jsonl} (one JSON object per case: kernel, sizes, max absolute and relative error,
 * tolerance, pass), {@code timings.jsonl} (the decode and prefill kernels timed at LLaMA-2-7B's shapes
 * next to a device-to-device copy, {@link KernelTimings}) and {@code summary.txt}. Invoked by {@code deploy/gpu/device-check.sh} as
 * {@code java ... dev.owlery.engine.cuda.check.KernelCheck <output folder>}.
 *
 * <p>Exit status: {@value #EXIT_PASSED} every case passed; {@value #EXIT_FAILED} a case failed or
 * raised a CUDA error; {@value #EXIT_USAGE} bad arguments; {@value #EXIT_NO_DEVICE} no CUDA device
 * (one line "no CUDA device: reason" on standard output and in {@code summary.txt}).
 */
public final class KernelCheck {

  public static final int EXIT_PASSED = 0;
  public static final int EXIT_FAILED = 1;
  public static final int EXIT_USAGE = 2;
  public static final int EXIT_NO_DEVICE = 3;

  private KernelCheck() {}

  public static void main(String[] args) {
    System.exit(run(args, System.out));
  }

  /** The check without {@code System.exit}: returns the exit status, reports on {@code out}. */
  static int run(String[] args, PrintStream out) {
    if (args.length != 1) {
      out.println("usage: KernelCheck <output folder>: runs every CUDA kernel against the CPU engine and writes "
          + "kernels.jsonl and summary.txt there");
      return EXIT_USAGE;
    }
    Path folder = Path.of(args[0]);
    if (!createFolder(folder, out)) {
      return EXIT_USAGE;
    }
    return onDevice(folder, out, gpu -> check(gpu, CheckCases.all(), folder, out));
  }

  private static int check(CudaDriverDevice gpu, List<KernelCase> cases, Path folder, PrintStream out) {
    List<String> json = new ArrayList<>();
    List<String> summary = new ArrayList<>();
    summary.add("kernel check on " + gpu.name() + ", " + cases.size() + " cases, seed " + CheckCases.SEED);
    int failed = 0;
    String contextLost = null; // after a sticky CUDA error every later call fails: the rest is not run
    for (KernelCase c : cases) {
      Tolerance tolerance = c.tolerance();
      String line;
      boolean passed;
      if (contextLost != null) {
        json.add("{\"kernel\":%s,\"sizes\":%s,\"pass\":false,\"error\":%s}".formatted(quote(c.kernel()),
            quote(c.sizes()), quote("not run: " + contextLost)));
        line = "FAIL %-16s %-60s not run: %s".formatted(c.kernel(), c.sizes(), contextLost);
        summary.add(line);
        out.println(line);
        failed++;
        continue;
      }
      try {
        Expected expected = c.expected();
        Comparison comparison = Comparison.of(expected, c.runOn(gpu), tolerance);
        passed = comparison.passed();
        json.add("{\"kernel\":%s,\"sizes\":%s,\"maxAbsError\":%s,\"maxRelError\":%s,\"atol\":%s,\"rtol\":%s,"
            .formatted(quote(c.kernel()), quote(c.sizes()), number(comparison.maxAbsError()),
                number(comparison.maxRelError()), number(tolerance.absolute()), number(tolerance.relative()))
            + "\"failures\":%d,\"values\":%d,\"pass\":%s,\"tolerance\":%s}".formatted(comparison.failures(),
                comparison.count(), passed, quote(tolerance.why())));
        line = "%s %-16s %-60s maxAbs %.3g maxRel %.3g (atol %.3g, rtol %.3g)%s".formatted(passed ? "PASS" : "FAIL",
            c.kernel(), c.sizes(), comparison.maxAbsError(), comparison.maxRelError(), tolerance.absolute(),
            tolerance.relative(), passed ? "" : " " + comparison.failures() + " of " + comparison.count()
                + " values out, first at " + comparison.firstFailure());
      } catch (CudaException e) {
        passed = false;
        json.add("{\"kernel\":%s,\"sizes\":%s,\"pass\":false,\"error\":%s}".formatted(quote(c.kernel()),
            quote(c.sizes()), quote(e.getMessage())));
        line = "FAIL %-16s %-60s CUDA error: %s".formatted(c.kernel(), c.sizes(), e.getMessage());
      }
      try {
        gpu.freeAll();
      } catch (CudaException e) {
        contextLost = "the CUDA context failed after %s (%s)".formatted(c.kernel(), e.getMessage());
      }
      failed += passed ? 0 : 1;
      summary.add(line);
      out.println(line);
    }
    String verdict = failed == 0 ? "all %d cases passed".formatted(cases.size())
        : "%d of %d cases failed".formatted(failed, cases.size());
    summary.add(verdict);
    out.println(verdict);
    write(folder.resolve("kernels.jsonl"), json);
    boolean timed = contextLost == null && time(gpu, folder, summary, out);
    write(folder.resolve("summary.txt"), summary);
    return failed == 0 && timed ? EXIT_PASSED : EXIT_FAILED;
  }

  /** Times the kernels at LLaMA-2-7B's shapes into timings.jsonl and the summary; false on a CUDA error. */
  private static boolean time(CudaDriverDevice gpu, Path folder, List<String> summary, PrintStream out) {
    List<KernelTimings.Timing> timings;
    try {
      timings = KernelTimings.run(gpu);
    } catch (CudaException e) {
      String line = "FAIL timings: CUDA error: " + e.getMessage();
      summary.add(line);
      out.println(line);
      return false;
    }
    double copy = timings.getFirst().gigabytesPerSecond();
    List<String> json = new ArrayList<>();
    for (KernelTimings.Timing t : timings) {
      json.add("{\"kernel\":%s,\"shape\":%s,\"microseconds\":%s,\"gigabytesPerSecond\":%s,"
          .formatted(quote(t.kernel()), quote(t.shape()), number(t.microseconds()), number(t.gigabytesPerSecond()))
          + "\"fractionOfCopy\":%s,\"teraflopsPerSecond\":%s}".formatted(number(t.gigabytesPerSecond() / copy),
              number(t.teraflopsPerSecond())));
      String line = KernelTimings.describe(t, copy);
      summary.add(line);
      out.println(line);
    }
    write(folder.resolve("timings.jsonl"), json);
    return true;
  }



  private static String quote(String s) {
    StringBuilder b = new StringBuilder("\"");
    for (char ch : String.valueOf(s).toCharArray()) {
      switch (ch) {
        case '"' -> b.append("\\\"");
        case '\\' -> b.append("\\\\");
        case '\n' -> b.append("\\n");
        case '\r' -> b.append("\\r");
        case '\t' -> b.append("\\t");
        default -> {
          if (ch < 0x20) {
            b.append(String.format(Locale.ROOT, "\\u%04x", (int) ch));
          } else {
            b.append(ch);
          }
        }
      }
    }
    return b.append('"').toString();
  }
}
