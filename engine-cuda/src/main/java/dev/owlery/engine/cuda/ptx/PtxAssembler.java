package dev.owlery.engine.cuda.ptx;

import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import jcuda.nvptxcompiler.JNvPTXCompiler;
import jcuda.nvptxcompiler.nvPTXCompileResult;
import jcuda.nvptxcompiler.nvPTXCompilerHandle;

/**
 * Assembles PTX to a GPU's machine code with JCuda's nvPTXCompiler (CUDA 12.0's ptxas as a
 * library, self-contained: it needs no GPU and no driver) and reads each kernel's registers, spills
 * and shared memory from its verbose log. The GPU is never involved: this is what lets a CPU-only
 * build prove every kernel assembles.
 */
public final class PtxAssembler {

  private static final Pattern ENTRY = Pattern.compile("Compiling entry function '([^']+)' for '([^']+)'");
  private static final Pattern SPILLS = Pattern.compile("(\\d+) bytes spill stores, (\\d+) bytes spill loads");
  private static final Pattern REGISTERS = Pattern.compile("Used (\\d+) registers");
  private static final Pattern SHARED = Pattern.compile("(\\d+) bytes smem");

  private PtxAssembler() {}

  /** What ptxas reports for one kernel. */
  public record EntryResources(String name, int registers, int spillStoreBytes, int spillLoadBytes, int sharedBytes) {}

  /**
   * Assembles {@code ptx} for {@code gpuName} (e.g. {@code sm_90}).
   *
   * @return the kernels' resources by entry name, in the log's order
   * @throws IllegalStateException when assembly fails, with ptxas's error log
   */
  public static Map<String, EntryResources> assemble(String ptx, String gpuName) {
    byte[] image = (ptx + "\0").getBytes(StandardCharsets.UTF_8);
    nvPTXCompilerHandle handle = new nvPTXCompilerHandle();
    check(JNvPTXCompiler.nvPTXCompilerCreate(handle, image.length, image), "nvPTXCompilerCreate", null);
    try {
      int rc = JNvPTXCompiler.nvPTXCompilerCompile(handle, 2, new String[] {"--gpu-name=" + gpuName, "--verbose"});
      check(rc, "nvPTXCompilerCompile for " + gpuName, handle);
      long[] size = new long[1];
      check(JNvPTXCompiler.nvPTXCompilerGetInfoLogSize(handle, size), "nvPTXCompilerGetInfoLogSize", handle);
      byte[] log = new byte[(int) size[0]];
      check(JNvPTXCompiler.nvPTXCompilerGetInfoLog(handle, log), "nvPTXCompilerGetInfoLog", handle);
      return parseInfoLog(text(log));
    } finally {
      JNvPTXCompiler.nvPTXCompilerDestroy(handle);
    }
  }

  /**
   * Reads ptxas's verbose log: per kernel a "Compiling entry function 'name'" line followed by its
   * spill line and its "Used N registers[, M bytes smem]" line.
   */
  static Map<String, EntryResources> parseInfoLog(String log) {
    Map<String, EntryResources> entries = new LinkedHashMap<>();
    String current = null;
    int spillStores = -1;
    int spillLoads = -1;
    for (String line : log.split("\n")) {
      Matcher entry = ENTRY.matcher(line);
      if (entry.find()) {
        current = entry.group(1);
        spillStores = spillLoads = -1;
        continue;
      }
      Matcher spills = SPILLS.matcher(line);
      if (current != null && spills.find()) {
        spillStores = Integer.parseInt(spills.group(1));
        spillLoads = Integer.parseInt(spills.group(2));
        continue;
      }
      Matcher registers = REGISTERS.matcher(line);
      if (current != null && registers.find()) {
        if (spillStores < 0) {
          throw new IllegalStateException("ptxas log has no spill line for '%s' before its register line:%n%s"
              .formatted(current, log));
        }
        Matcher shared = SHARED.matcher(line);
        int sharedBytes = shared.find() ? Integer.parseInt(shared.group(1)) : 0;
        entries.put(current, new EntryResources(current, Integer.parseInt(registers.group(1)), spillStores, spillLoads,
            sharedBytes));
        current = null;
      }
    }
    return entries;
  }

  private static void check(int rc, String what, nvPTXCompilerHandle handle) {
    if (rc == nvPTXCompileResult.NVPTXCOMPILE_SUCCESS) {
      return;
    }
    String errors = "";
    if (handle != null) {
      long[] size = new long[1];
      if (JNvPTXCompiler.nvPTXCompilerGetErrorLogSize(handle, size) == nvPTXCompileResult.NVPTXCOMPILE_SUCCESS
          && size[0] > 0) {
        byte[] log = new byte[(int) size[0]];
        JNvPTXCompiler.nvPTXCompilerGetErrorLog(handle, log);
        errors = ":\n" + text(log);
      }
    }
    throw new IllegalStateException(what + " failed with " + nvPTXCompileResult.stringFor(rc) + errors);
  }

  /** The log's text up to its terminating NUL. */
  private static String text(byte[] log) {
    int end = 0;
    while (end < log.length && log[end] != 0) {
      end++;
    }
    return new String(log, 0, end, StandardCharsets.UTF_8);
  }
}
