/**
 * The scheduler (DESIGN.md §2, coordinator): runs each accepted request's sequence on a READY shard
 * group step by step — RunStep fanned out to every rank, vocabulary slices gathered, sampled,
 * detokenized and streamed — and fails it with a status a person can act on when a rank is lost.
 * One sequence runs at a time per group (continuous batching comes next).
 */
package dev.owlery.coordinator.scheduler;
