/**
 * Hazelcast cluster membership shared by every node (DESIGN.md §2-3, cluster): an embedded member
 * joined over TCP-IP, with failure detection tuned so a dead node is noticed within seconds.
 */
package dev.owlery.cluster.membership;
