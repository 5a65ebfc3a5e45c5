package dev.owlery.engine.checkpoint;

/**
 * A tensor as {@code torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, ...)}
 * describes it: {@code size} and {@code stride} are in elements.
 */
record TorchTensorRef(TorchStorageRef storage, long storageOffset, long[] size, long[] stride) {}
