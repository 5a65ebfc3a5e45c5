package dev.owlery.cluster.tls;

import io.grpc.ChannelCredentials;
import io.grpc.ServerCredentials;
import io.grpc.TlsChannelCredentials;
import io.grpc.TlsServerCredentials;
import io.grpc.util.AdvancedTlsX509KeyManager;
import io.grpc.util.AdvancedTlsX509TrustManager;
import io.grpc.util.CertificateUtils;
import java.io.IOException;
import java.io.InputStream;
import java.lang.System.Logger.Level;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.security.GeneralSecurityException;
import java.security.PrivateKey;
import java.security.Signature;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * One side's TLS material (a certificate chain, its private key and, optionally, the CA it trusts
 * in peers), read from PEM files and reread when a file's modification time changes, checked
 * every {@link #RELOAD_PERIOD}: a certificate rotated on disk is served from the next handshake
 * on, without a restart. The material lives in grpc-java's advanced TLS key and trust managers,
 * which every server and channel built from {@link #serverCredentials()} and {@link
 * #channelCredentials()} consult at each handshake. {@link #close()} stops the rereading; the
 * credentials then keep the material last read.
 *
 * <p>The managers' own file watching is not used: it checks at most once a minute and only when
 * the key and the certificate both changed. Here a pair is installed only once the key matches
 * the certificate, so a rotation caught between its two writes waits for the next check.
 *
 * <p>Peers are checked against the trusted CA only, not against a host name: inside the cluster a
 * node is whoever holds a certificate the cluster CA signed (docs/security.md says why).
 */
public final class ReloadingTls implements AutoCloseable {

  /** How often the files' modification times are checked. */
  public static final Duration RELOAD_PERIOD = Duration.ofSeconds(1);

  private static final System.Logger LOG = System.getLogger(ReloadingTls.class.getName());

  private final Path certificate;
  private final Path key;
  /** Null when no CA was given: a server then asks for no client certificate. */
  private final Path trustedCa;
  private final AdvancedTlsX509KeyManager keys = new AdvancedTlsX509KeyManager();
  /** Null when no CA was given. */
  private final AdvancedTlsX509TrustManager trust;
  private final ScheduledExecutorService rereader;
  /** The files' modification times when last read successfully; only the rereader's thread touches it after open. */
  private List<FileTime> lastRead;

  private ReloadingTls(Path certificate, Path key, Path trustedCa) throws GeneralSecurityException {
    this.certificate = certificate;
    this.key = key;
    this.trustedCa = trustedCa;
    this.trust = trustedCa == null ? null : AdvancedTlsX509TrustManager.newBuilder()
        .setVerification(AdvancedTlsX509TrustManager.Verification.CERTIFICATE_ONLY_VERIFICATION).build();
    this.rereader = Executors.newSingleThreadScheduledExecutor(runnable -> {
      Thread thread = new Thread(runnable, "owlery-tls-reload");
      thread.setDaemon(true);
      return thread;
    });
  }

  /**
   * Reads {@code certificate} (PEM, the leaf first), {@code key} (PEM, PKCS#8, RSA or EC) and,
   * unless null, {@code trustedCa} (PEM), and starts rereading them when they change.
   *
   * @throws IllegalArgumentException naming the files when one is missing or cannot be parsed, or
   *     the key does not belong to the certificate
   */
  public static ReloadingTls open(Path certificate, Path key, Path trustedCa) {
    requireReadable("certificate", certificate);
    requireReadable("private key", key);
    if (trustedCa != null) {
      requireReadable("CA certificate", trustedCa);
    }
    ReloadingTls tls;
    try {
      tls = new ReloadingTls(certificate, key, trustedCa);
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("cannot make a TLS trust manager: " + e.getMessage(), e);
    }
    try {
      tls.read();
    } catch (IOException | GeneralSecurityException | RuntimeException e) {
      tls.close();
      throw new IllegalArgumentException("cannot use the TLS files %s: %s".formatted(tls.files(), e.getMessage()), e);
    }
    long period = RELOAD_PERIOD.toMillis();
    tls.rereader.scheduleWithFixedDelay(tls::rereadIfChanged, period, period, TimeUnit.MILLISECONDS);
    return tls;
  }

  /**
   * Credentials of a TLS server presenting this certificate; when a CA was given, a client must
   * present a certificate that CA signed, or the handshake fails.
   */
  public ServerCredentials serverCredentials() {
    TlsServerCredentials.Builder builder = TlsServerCredentials.newBuilder().keyManager(keys);
    if (trust != null) {
      builder.trustManager(trust).clientAuth(TlsServerCredentials.ClientAuth.REQUIRE);
    }
    return builder.build();
  }

  /**
   * Credentials of a channel presenting this certificate and accepting only servers whose
   * certificate the CA signed (mutual TLS).
   *
   * @throws IllegalStateException when no CA was given
   */
  public ChannelCredentials channelCredentials() {
    if (trust == null) {
      throw new IllegalStateException("a TLS channel needs the CA it trusts; none was given");
    }
    return TlsChannelCredentials.newBuilder().keyManager(keys).trustManager(trust).build();
  }

  /** Stops rereading the files. */
  @Override
  public void close() {
    rereader.shutdownNow();
  }

  private List<Path> files() {
    return trustedCa == null ? List.of(certificate, key) : List.of(certificate, key, trustedCa);
  }

  private List<FileTime> modificationTimes() throws IOException {
    List<FileTime> times = new ArrayList<>();
    for (Path file : files()) {
      times.add(Files.getLastModifiedTime(file));
    }
    return times;
  }

  private void rereadIfChanged() {
    try {
      if (!modificationTimes().equals(lastRead)) {
        read();
      }
    } catch (IOException | GeneralSecurityException | RuntimeException e) {
      // A rotation caught half-way, or a bad file: the material last read stays; the next check tries again.
      LOG.log(Level.WARNING, "cannot reread the TLS files {0}, still serving the ones read before: {1}", files(),
          e.getMessage());
    }
  }

  private void read() throws IOException, GeneralSecurityException {
    List<FileTime> times = modificationTimes();
    X509Certificate[] chain;
    PrivateKey privateKey;
    try (InputStream in = Files.newInputStream(certificate)) {
      chain = CertificateUtils.getX509Certificates(in);
    }
    try (InputStream in = Files.newInputStream(key)) {
      privateKey = CertificateUtils.getPrivateKey(in);
    }
    if (chain.length == 0) {
      throw new GeneralSecurityException(certificate + " holds no PEM certificate");
    }
    requireMatching(chain[0], privateKey);
    if (trust != null) {
      X509Certificate[] authorities;
      try (InputStream in = Files.newInputStream(trustedCa)) {
        authorities = CertificateUtils.getX509Certificates(in);
      }
      if (authorities.length == 0) {
        throw new GeneralSecurityException(trustedCa + " holds no PEM certificate");
      }
      trust.updateTrustCredentials(authorities);
    }
    keys.updateIdentityCredentials(chain, privateKey);
    lastRead = times;
  }

  /** Signs with the key and verifies with the certificate: a key from another pair fails. */
  private void requireMatching(X509Certificate leaf, PrivateKey privateKey) throws GeneralSecurityException {
    String algorithm = switch (privateKey.getAlgorithm()) {
      case "EC" -> "SHA256withECDSA";
      case "RSA" -> "SHA256withRSA";
      default -> throw new GeneralSecurityException("the key in " + key + " is " + privateKey.getAlgorithm()
          + "; RSA or EC keys are read");
    };
    byte[] probe = "owlery".getBytes(StandardCharsets.US_ASCII);
    Signature signer = Signature.getInstance(algorithm);
    signer.initSign(privateKey);
    signer.update(probe);
    byte[] signature = signer.sign();
    Signature verifier = Signature.getInstance(algorithm);
    verifier.initVerify(leaf.getPublicKey());
    verifier.update(probe);
    if (!verifier.verify(signature)) {
      throw new GeneralSecurityException("the key in " + key + " does not belong to the certificate in " + certificate);
    }
  }

  private static void requireReadable(String what, Path file) {
    if (file == null || !Files.isReadable(file)) {
      throw new IllegalArgumentException("the TLS %s %s is not a readable file".formatted(what, file));
    }
  }
}
