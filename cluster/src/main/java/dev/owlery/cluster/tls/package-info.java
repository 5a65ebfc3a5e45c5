/**
 * TLS for every gRPC link (docs/security.md): credentials read from PEM files and reread when the
 * files change ({@link dev.owlery.cluster.tls.ReloadingTls}), and the development CA and node
 * certificates {@code owlery certs} writes ({@link dev.owlery.cluster.tls.DevCertificates}).
 */
package dev.owlery.cluster.tls;
