/**
 * {@code owlery loadtest}'s measuring side: client threads issuing Generate requests back to back
 * through the client SDK, per-request timings (time to first token, inter-token latency, end to
 * end) in HdrHistograms, and the report of each concurrency level as a table or JSON.
 */
package dev.owlery.loadtest;
