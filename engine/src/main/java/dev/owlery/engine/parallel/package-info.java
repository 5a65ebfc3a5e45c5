/**
 * Tensor-parallel communication seams (DESIGN.md §2, shard workers): the {@link
 * dev.owlery.engine.parallel.Collective} a decoder slice all-reduces through, and an in-process
 * group joining N slices on N threads; the cluster supplies a gRPC implementation.
 */
package dev.owlery.engine.parallel;
