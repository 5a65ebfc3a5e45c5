package dev.owlery.engine.cuda.ptx;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Locale;

/**
 * One compiled CUDA C file: {@code src/main/cuda/<name>.cu}, checked in as the PTX resource
 * {@code dev/owlery/engine/cuda/ptx/<name>.ptx} by {@code scripts/build-ptx.sh}, and the kernels it
 * defines ({@link PtxKernels}).
 */
public enum PtxModule {
  /** Embedding gather, RMSNorm (MAM), RoPE, SiLU * up, residual add. */
  ELEMENTWISE,
  /** Decode matrix-vector products, F16 / BF16 / F32 weights. */
  GEMV,
  /** Tensor-core (mma.sync) matrix products, F16 / BF16 weights. */
  GEMM,
  /** KV append into the paged F16 cache and paged attention. */
  ATTENTION,
  /** The vision tower's LayerNorm, table (bias, positions) add, QuickGELU and unmasked attention. */
  VISION;

  /** The file name without extension: {@code elementwise}, {@code gemv}, ... */
  public String fileName() {
    return name().toLowerCase(Locale.ROOT);
  }

  /** Where the PTX lives on the class path. */
  public String resourcePath() {
    return "/dev/owlery/engine/cuda/ptx/" + fileName() + ".ptx";
  }

  /** The PTX text, as {@code cuModuleLoadData} and nvPTXCompiler take it (without the terminating NUL). */
  public String ptx() {
    try (InputStream in = PtxModule.class.getResourceAsStream(resourcePath())) {
      if (in == null) {
        throw new IllegalStateException("PTX resource " + resourcePath() + " is missing from the class path; "
            + "run scripts/build-ptx.sh and rebuild engine-cuda");
      }
      return new String(in.readAllBytes(), StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read PTX resource " + resourcePath(), e);
    }
  }

  /** The kernels this module defines, in catalogue order. */
  public List<PtxKernel> kernels() {
    return PtxKernels.ALL.stream().filter(k -> k.module() == this).toList();
  }
}
