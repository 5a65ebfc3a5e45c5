/**
 * The coordinator node (DESIGN.md §2-3, coordinator): the only public endpoint of the cluster; its
 * life cycle wires the API ({@code api}), the placement authority ({@code placement}), the
 * scheduler ({@code scheduler}) and the KV block manager ({@code blocks}). Its meters (vLLM-style
 * names: time to first token, time per output token, e2e latency, queue time, running/waiting,
 * outcomes, admission rejections) are listed in {@link
 * dev.owlery.coordinator.scheduler.GenerationMetrics}; the image cache's in {@link
 * dev.owlery.coordinator.placement.ImageEmbeddingCache}.
 */
package dev.owlery.coordinator;
