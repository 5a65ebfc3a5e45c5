/**
 * Kernels whose F16, Q8_0 and Q4_0 products run partly in C of Owlery's own (one token on AVX-512
 * VNNI, AVX2 or AVX-512; Q8_0 and Q4_0 with several tokens on AMX (Q8_0) or AVX-512 VNNI), and whose
 * activations are quantized there too, compiled on the machine on first use and
 * called through the FFM API ({@link dev.owlery.engine.nativekernels.NativeKernels}); the shard
 * worker's and the bench's {@code native} kernel set, and {@code native-bf16}, which multiplies
 * attention's products over prompts in BF16 as well.
 */
package dev.owlery.engine.nativekernels;
