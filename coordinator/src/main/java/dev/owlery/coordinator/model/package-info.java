/**
 * The model as the coordinator knows it (DESIGN.md §2, coordinator): its config and tokenizer,
 * no weights — those live on the vision and shard workers.
 */
package dev.owlery.coordinator.model;
