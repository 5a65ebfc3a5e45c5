package dev.owlery.engine.checkpoint;

import dev.owlery.engine.tensor.DType;

/**
 * A pickle's persistent id for a storage: {@code ('storage', torch.<Type>Storage, key, location,
 * numel)}; its bytes are the archive entry {@code <prefix>/data/<key>} (or, in the legacy format,
 * the record with that key), starting {@code elementOffset} elements in (legacy views only).
 */
record TorchStorageRef(String key, DType dtype, long numel, long elementOffset) {}
