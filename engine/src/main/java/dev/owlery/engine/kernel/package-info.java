/**
 * The numeric operations behind the {@link dev.owlery.engine.kernel.Kernels} interface (DESIGN.md §3,
 * engine): the scalar reference, the Vector API implementation, and the factory that picks one per
 * process. Hand-tuned code lives only here (STYLE §4).
 */
package dev.owlery.engine.kernel;
