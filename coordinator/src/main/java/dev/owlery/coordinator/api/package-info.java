/**
 * The public API (DESIGN.md §2, coordinator): the {@code owlery.v1.Owlery} service — request
 * validation at the edge, template and tokenization, images to a vision worker, the job to the
 * scheduler, and the cluster's status; API keys and their per-key limits in front of it.
 */
package dev.owlery.coordinator.api;
