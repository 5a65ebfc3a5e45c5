/**
 * Which device a node computes on ({@code --device cpu|cuda[:N]}) and what a CUDA device is: found
 * through JCuda's driver API, or absent with a one-line reason a person can act on.
 */
package dev.owlery.engine.cuda.device;
