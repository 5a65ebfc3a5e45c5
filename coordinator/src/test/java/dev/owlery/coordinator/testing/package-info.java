/**
 * Test support for the coordinator: shard workers to place (a launcher seam, with an in-process
 * fake until the shard-worker module is merged) and a whole cluster on loopback.
 */
package dev.owlery.coordinator.testing;
