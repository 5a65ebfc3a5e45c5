/**
 * The all-reduce between the shards of one tensor-parallel group over long-lived gRPC streams
 * (DESIGN.md §2, shard worker; {@code owlery.internal.v1.ShardPeer}): {@link
 * dev.owlery.shard.collective.GrpcCollective} implements the engine's {@code Collective}, {@link
 * dev.owlery.shard.collective.ShardPeerService} accepts the streams opened by lower ranks. Ranks on
 * the same host read each other's partials from files of shared memory instead ({@link
 * dev.owlery.shard.collective.SharedSlots}), agreed in the streams' handshake.
 */
package dev.owlery.shard.collective;
