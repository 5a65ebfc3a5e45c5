/**
 * The OpenAI-compatible HTTP API (DESIGN.md §2, coordinator): a thin HTTP/JSON front on Netty that
 * turns {@code /v1/chat/completions} and {@code /v1/completions} into the public {@code Generate} call,
 * served by the same service, API-key interceptor, validator, scheduler and metrics as gRPC callers.
 */
package dev.owlery.coordinator.http;
