/**
 * The kernel check a GPU machine runs ({@link dev.owlery.engine.cuda.check.KernelCheck}): every kernel
 * on random inputs at odd sizes against the engine's CPU code, one JSON line per case and a text
 * summary; a clear one-line refusal where there is no CUDA device.
 */
package dev.owlery.engine.cuda.check;
