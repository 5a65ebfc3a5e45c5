/**
 * Kernels whose decode matrix-vector products (one token, F16 and Q8_0 weights) run in C of
 * Owlery's own, compiled on the machine on first use and called through the FFM API
 * ({@link dev.owlery.engine.nativekernels.NativeKernels}); the shard worker's and the bench's
 * {@code native} kernel set.
 */
package dev.owlery.engine.nativekernels;
