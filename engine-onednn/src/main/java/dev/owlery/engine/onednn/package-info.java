/**
 * Kernels whose many-token matmuls run in BF16 through the system's oneDNN, called through the FFM
 * API ({@link dev.owlery.engine.onednn.OneDnnKernels}); the vision worker's and the bench's
 * {@code onednn-bf16} kernel set.
 */
package dev.owlery.engine.onednn;
