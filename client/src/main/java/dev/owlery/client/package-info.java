/**
 * The Java client SDK (DESIGN.md §3, client) for the public {@code owlery.v1.Owlery} API:
 * blocking, streaming (iterator and callback) and asynchronous generation, with deadlines,
 * cancellation that reaches the server, and {@link dev.owlery.client.OwleryException} for failures.
 */
package dev.owlery.client;
