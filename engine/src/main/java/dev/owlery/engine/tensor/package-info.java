/**
 * Tensors and weight views over memory-mapped checkpoint bytes (DESIGN.md §3, engine; §5: weights
 * are mapped, never copied to the heap).
 */
package dev.owlery.engine.tensor;
