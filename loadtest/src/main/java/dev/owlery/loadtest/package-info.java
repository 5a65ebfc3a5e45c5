/**
 * The load-testing harness, on the client side of the API only: workloads (closed loop at fixed
 * concurrency, open loop at a seeded Poisson or gamma request rate; fixed prompts, JSONL and
 * ShareGPT datasets, synthetic lengths), per-request timings (TTFT, TPOT, ITL, E2E) through the
 * client SDK, goodput under SLOs, the cluster's own figures scraped from its /metrics, faults
 * injected by the harness that started the cluster, and the report as a table, JSON or a
 * self-contained HTML page; two reports compared with a verdict per metric. {@link
 * dev.owlery.loadtest.LoadTest} is its command; {@code owlery loadtest} mixes in the same options.
 */
package dev.owlery.loadtest;
