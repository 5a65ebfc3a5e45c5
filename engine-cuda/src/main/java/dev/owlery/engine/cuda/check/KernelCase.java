package dev.owlery.engine.cuda.check;

import dev.owlery.engine.cuda.runtime.Device;

/**
 * One kernel run of the check: inputs generated at fixed seeds and odd sizes, the engine's CPU answer
 * for them, and the kernel's answer on the device.
 */
interface KernelCase {

  /** The kernel's entry name. */
  String kernel();

  /** The sizes of this run, for the report ("rows=333 cols=777 tokens=3"). */
  String sizes();

  /** How far the device may be from the CPU, and why. */
  Tolerance tolerance();

  /** The CPU reference: the engine's own code where it is reachable. */
  Expected expected();

  /** Uploads the inputs, runs the kernel on {@code device} (a GPU, or the CPU twins), returns its output in the layout of {@link #expected()}. */
  float[] runOn(Device device);

  /**
   * The reference's values, and per value the magnitude its error is measured against (|value| for
   * element-wise results; {@code sum |w| |x|} for a dot product, whose rounding error scales with
   * that sum rather than with the result, which may cancel to near zero).
   */
  record Expected(float[] values, float[] scale) {}

  /**
   * A device value {@code a} passes against a reference {@code e} when {@code |a - e| <= absolute +
   * relative * scale}; a NaN never passes.
   */
  record Tolerance(double absolute, double relative, String why) {

    static Tolerance exact(String why) {
      return new Tolerance(0, 0, why);
    }
  }
}
