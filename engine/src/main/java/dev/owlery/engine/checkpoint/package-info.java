/**
 * Checkpoint readers and writers (DESIGN.md §3, engine; spec §8): safetensors and PyTorch
 * {@code .bin} files, single or sharded, memory-mapped and validated on open, never unpickled
 * beyond the globals a state dict uses.
 */
package dev.owlery.engine.checkpoint;
