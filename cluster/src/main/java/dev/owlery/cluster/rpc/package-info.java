/**
 * gRPC plumbing every node shares (DESIGN.md §3, cluster; STYLE.md §5): the server life cycle with
 * the standard health service, channels with keepalive, both plaintext or TLS as their configs'
 * credentials say ({@link dev.owlery.cluster.tls}), and the one interceptor that turns exceptions
 * into statuses.
 */
package dev.owlery.cluster.rpc;
