/**
 * The shard worker node (DESIGN.md §2): what {@code owlery shard-worker} starts — the gRPC server,
 * the /metrics endpoint, a Hazelcast member and the node's registry record.
 */
package dev.owlery.shard.node;
