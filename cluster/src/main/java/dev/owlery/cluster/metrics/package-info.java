/**
 * Metrics every node exposes (DESIGN.md §5): a Micrometer registry in Prometheus format and the
 * small HTTP server answering {@code GET /metrics}.
 */
package dev.owlery.cluster.metrics;
