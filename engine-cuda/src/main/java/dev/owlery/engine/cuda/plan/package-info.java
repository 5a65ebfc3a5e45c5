/**
 * How a shard's slice fits into a CUDA device's memory: its weights, the workspace of its largest
 * step and, in what {@code --gpu-memory-utilization} leaves, the paged KV pool in blocks of the
 * coordinator's block size. Pure arithmetic, no device needed.
 */
package dev.owlery.engine.cuda.plan;
