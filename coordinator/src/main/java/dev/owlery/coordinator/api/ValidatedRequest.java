package dev.owlery.coordinator.api;

import dev.owlery.coordinator.scheduler.SequenceRequest;
import dev.owlery.proto.v1.AspectRatioPolicy;
import dev.owlery.proto.v1.Image;
import java.util.List;

/**
 * A Generate request that passed every check: the sequence to run, and the images to encode first.
 *
 * @param aspectRatioPolicy resolved (never UNSPECIFIED)
 */
public record ValidatedRequest(SequenceRequest sequence, List<Image> images, AspectRatioPolicy aspectRatioPolicy) {

  public ValidatedRequest {
    images = List.copyOf(images);
  }
}
