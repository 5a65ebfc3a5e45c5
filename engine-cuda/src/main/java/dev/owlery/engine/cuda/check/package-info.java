/**
 * The checks a GPU machine runs: {@link dev.owlery.engine.cuda.check.KernelCheck} (every kernel on
 * random inputs at odd sizes against the engine's CPU code) and
 * {@link dev.owlery.engine.cuda.check.ParityCheck} (the device decoder against the CPU decoder and the
 * fixtures' reference outputs); one JSON line per case and a text summary each, and a clear one-line
 * refusal where there is no CUDA device.
 */
package dev.owlery.engine.cuda.check;
