/**
 * The paged-KV block manager (DESIGN.md §2, coordinator): which KV cache blocks of a shard group
 * each sequence holds. The shards only hold the memory; block tables travel with every step.
 */
package dev.owlery.coordinator.blocks;
