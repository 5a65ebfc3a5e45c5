/**
 * The decoder slice on a device (DESIGN.md §2, shard worker; issue 11): one tensor-parallel rank's
 * weights, paged F16 KV cache and activations held in a {@link dev.owlery.engine.cuda.runtime.Device}'s
 * memory, a step run as kernel launches, the two all-reduces per layer and the logits the only
 * trips to the host.
 */
package dev.owlery.engine.cuda.forward;
