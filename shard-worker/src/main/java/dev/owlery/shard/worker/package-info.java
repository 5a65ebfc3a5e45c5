/**
 * The shard worker's gRPC service (DESIGN.md §2, shard worker; {@code owlery.internal.v1.ShardWorker}):
 * loads rank r of N of the decoder, runs the coordinator's steps one at a time on one thread, and
 * returns its vocabulary slice of the logits.
 */
package dev.owlery.shard.worker;
