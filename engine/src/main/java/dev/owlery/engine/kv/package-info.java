/**
 * Key/value caches of the decoder's attention (DESIGN.md §2: shards hold the KV memory for their
 * heads): per sequence, per layer, keys stored after RoPE (spec §4); contiguous per sequence, or
 * paged in a block pool addressed through each sequence's block table.
 */
package dev.owlery.engine.kv;
