package dev.owlery.engine.cuda.runtime;

import dev.owlery.engine.cuda.ptx.PtxKernel;
import java.util.List;

/** The check every {@link Device} makes before a launch: the arguments are those the catalogue lists. */
public final class KernelArguments {

  /** The most blocks a CUDA grid has in y (gridDim.y); x goes to 2^31 - 1. */
  public static final int MAX_GRID_Y = 65535;

  private KernelArguments() {}

  /**
   * Throws {@link IllegalArgumentException} naming the kernel, the parameter and what was given when
   * {@code args} do not match {@code kernel}'s parameters in number and kind, or the grid is empty or
   * taller than {@link #MAX_GRID_Y} (the GPU would refuse the launch; the twins must too).
   */
  public static void check(PtxKernel kernel, int gridX, int gridY, Object... args) {
    if (gridX < 1 || gridY < 1) {
      throw new IllegalArgumentException("%s needs a grid of at least 1 x 1 blocks, given %d x %d"
          .formatted(kernel.name(), gridX, gridY));
    }
    if (gridY > MAX_GRID_Y) {
      throw new IllegalArgumentException("%s: a CUDA grid has at most %d blocks in y, given %d"
          .formatted(kernel.name(), MAX_GRID_Y, gridY));
    }
    List<PtxKernel.Param> params = kernel.params();
    if (args.length != params.size()) {
      throw new IllegalArgumentException("%s takes %d arguments (%s), given %d"
          .formatted(kernel.name(), params.size(), params, args.length));
    }
    for (int i = 0; i < args.length; i++) {
      PtxKernel.ParamType type = params.get(i).type();
      boolean matches = switch (type) {
        case POINTER -> args[i] instanceof DevicePointer;
        case INT -> args[i] instanceof Integer;
        case FLOAT -> args[i] instanceof Float;
      };
      if (!matches) {
        throw new IllegalArgumentException("argument %d of %s ('%s') must be a %s, given %s"
            .formatted(i, kernel.name(), params.get(i).name(), type, args[i]));
      }
    }
  }
}
