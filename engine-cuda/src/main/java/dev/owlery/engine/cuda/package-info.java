/**
 * The decoder on NVIDIA GPUs: kernels written in CUDA C (src/main/cuda), compiled ahead of time to
 * PTX and loaded with JCuda's driver API, so that a slice's whole forward runs on one device.
 * {@code ptx} holds the compiled kernels and their catalogue, {@code runtime} the device seam (JCuda's
 * driver API, or Java twins of the kernels), {@code forward} the decoder slice on a device, and
 * {@code check} the kernel and parity checks run on a GPU machine.
 */
package dev.owlery.engine.cuda;
