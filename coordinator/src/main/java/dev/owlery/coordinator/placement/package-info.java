/**
 * Placement (DESIGN.md §2, coordinator: "the coordinator is the placement authority"): which shard
 * workers form which tensor-parallel group at which rank, their load and health checks, groups
 * going DOWN and being re-formed, which coordinator leads placement ({@link
 * dev.owlery.coordinator.placement.PlacementLeadership}) and which drives each group ({@link
 * dev.owlery.coordinator.placement.DrivenGroups}), which vision worker encodes a request's images, and the cache of
 * recent images' embeddings ({@link dev.owlery.coordinator.placement.ImageEmbeddingCache}) that spares it.
 */
package dev.owlery.coordinator.placement;
