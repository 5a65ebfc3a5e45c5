/**
 * The node registry (DESIGN.md §2, cluster): who is alive, its role, addresses, resources, state
 * and placement, kept in a Hazelcast map that every node reads and the coordinator places from.
 */
package dev.owlery.cluster.registry;
