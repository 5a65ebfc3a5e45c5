package dev.owlery.loadtest;

import dev.owlery.client.OwleryClient;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/**
 * {@code --tls-ca FILE} and, for a coordinator that requires client certificates, {@code
 * --tls-client-cert FILE --tls-client-key FILE}: how a command reaches a coordinator serving TLS.
 * Without them it connects in plaintext. A mixin of the {@code owlery} and {@code loadtest}
 * commands that call a coordinator.
 */
public final class ClientTlsOption {

  @Option(names = "--tls-ca", paramLabel = "FILE",
      description = "Connect over TLS, trusting the CA certificate(s) in this PEM file (e.g. owlery certs' ca.pem).")
  Path ca;

  @Option(names = "--tls-client-cert", paramLabel = "FILE",
      description = "With --tls-client-key: the client certificate (PEM) for a coordinator started with --tls-client-ca.")
  Path clientCertificate;

  @Option(names = "--tls-client-key", paramLabel = "FILE", description = "The private key (PEM, PKCS#8) of --tls-client-cert.")
  Path clientKey;

  /**
   * {@code builder} set to these options: TLS when a CA or a client certificate is given.
   *
   * @throws IllegalArgumentException when only one of the client certificate and its key is given
   */
  public OwleryClient.Builder applyTo(OwleryClient.Builder builder) {
    if ((clientCertificate == null) != (clientKey == null)) {
      throw new IllegalArgumentException("--tls-client-cert and --tls-client-key go together; give both or neither");
    }
    return builder.trustedCertificates(ca).clientCertificate(clientCertificate, clientKey);
  }
}
