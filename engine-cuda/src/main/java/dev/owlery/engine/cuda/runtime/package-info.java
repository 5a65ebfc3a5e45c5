/**
 * What the decoder's device forward needs from a device, as one seam ({@link
 * dev.owlery.engine.cuda.runtime.Device}): buffers, copies, launches of the catalogued kernels. Two
 * implementations: JCuda's driver API on a GPU, and Java twins of every kernel on the CPU, so that
 * the forward's launch sequence is tested where there is no GPU.
 */
package dev.owlery.engine.cuda.runtime;
