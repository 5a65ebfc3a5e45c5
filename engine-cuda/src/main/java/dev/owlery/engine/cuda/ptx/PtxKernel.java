package dev.owlery.engine.cuda.ptx;

import java.util.List;

/**
 * One kernel entry point of a {@link PtxModule}: its {@code .entry} name, its parameters in order
 * (what {@code cuLaunchKernel} is given) and the launch shape it is written for.
 *
 * @param blockSize the block size the kernel assumes, or {@link #ANY_BLOCK_SIZE} when any multiple
 *     of 32 up to 1024 works
 * @param dynamicSharedBytes the dynamic shared memory each block is launched with (0 for the kernels
 *     whose shared memory is all static)
 */
public record PtxKernel(PtxModule module, String name, List<Param> params, int blockSize, int dynamicSharedBytes) {

  /** A kernel written for any block size that is a multiple of 32 (grid-stride or per-warp loops). */
  public static final int ANY_BLOCK_SIZE = 0;

  public PtxKernel {
    params = List.copyOf(params);
  }

  /** A kernel with static shared memory only. */
  public PtxKernel(PtxModule module, String name, List<Param> params, int blockSize) {
    this(module, name, params, blockSize, 0);
  }

  /** The kind of a kernel parameter, with the PTX type clang gives it. */
  public enum ParamType {
    /** A device address ({@code u64} in the CUDA C source). */
    POINTER(".u64"),
    /** A 32-bit signed int. */
    INT(".u32"),
    /** A float32. */
    FLOAT(".f32");

    private final String ptxType;

    ParamType(String ptxType) {
      this.ptxType = ptxType;
    }

    /** The {@code .param} type in the PTX ({@code .u64}, {@code .u32}, {@code .f32}). */
    public String ptxType() {
      return ptxType;
    }
  }

  /** One parameter, named as in the CUDA C source. */
  public record Param(String name, ParamType type) {}
}
