/**
 * Key/value caches of the decoder's attention (DESIGN.md §2: shards hold the KV memory for their
 * heads): per sequence, per layer, keys stored after RoPE (spec §4).
 */
package dev.owlery.engine.kv;
