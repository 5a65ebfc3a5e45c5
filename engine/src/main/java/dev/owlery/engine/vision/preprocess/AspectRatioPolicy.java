package dev.owlery.engine.vision.preprocess;

/**
 * What happens to a non-square picture before the CLIP processor (spec §1.1, {@code process_images}).
 * The policy is a serving choice, not something the checkpoint decides, and it moves the model's
 * output more than any numeric detail (pitfall 15): make it explicit per request.
 */
public enum AspectRatioPolicy {
  /**
   * {@code 'pad'} ({@code serve/cli.py} default, training setting): {@code expand2square} onto a
   * canvas of colour {@code int(255·mean)} (truncated), the picture pasted at floor-centred offsets.
   */
  PAD,
  /**
   * {@code 'resize'} (README quick start, every {@code evaluate/*.py}; the tiny-owl2 fixture's
   * {@code pixel_values}): stretch to {@code (max_edge, max_edge)} with PIL bicubic.
   */
  RESIZE,
  /**
   * Any other {@code image_aspect_ratio} or none at all ({@code model.config} without the key): the
   * plain CLIP processor, whose center crop cuts off the long side.
   */
  NONE;

  /**
   * The policy the official code applies for a {@code model_cfg.image_aspect_ratio} value: "pad",
   * "resize", or anything else (null included) for {@link #NONE}.
   */
  public static AspectRatioPolicy fromImageAspectRatio(String imageAspectRatio) {
    if ("pad".equals(imageAspectRatio)) {
      return PAD;
    }
    if ("resize".equals(imageAspectRatio)) {
      return RESIZE;
    }
    return NONE;
  }
}
