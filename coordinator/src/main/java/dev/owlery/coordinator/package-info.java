/**
 * The coordinator node (DESIGN.md §2-3, coordinator): the only public endpoint of the cluster; its
 * life cycle wires the API ({@code api}), the placement authority ({@code placement}), the
 * scheduler ({@code scheduler}) and the KV block manager ({@code blocks}).
 */
package dev.owlery.coordinator;
