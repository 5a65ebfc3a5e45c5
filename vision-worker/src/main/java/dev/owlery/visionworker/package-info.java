/**
 * The vision worker (DESIGN.md §2-3, vision-worker): a stateless node that decodes, preprocesses
 * and encodes request images with the engine's vision tower and abstractor, serving the internal
 * {@code VisionWorker} gRPC service.
 */
package dev.owlery.visionworker;
