package dev.owlery.cluster.tls;

import java.io.IOException;
import java.io.Reader;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.math.BigInteger;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.cert.X509Certificate;
import java.security.spec.ECGenParameterSpec;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Date;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.regex.Pattern;
import org.bouncycastle.asn1.pkcs.PrivateKeyInfo;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.ExtendedKeyUsage;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.KeyPurposeId;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.cert.X509v3CertificateBuilder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509ExtensionUtils;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.openssl.PEMParser;
import org.bouncycastle.openssl.jcajce.JcaPEMKeyConverter;
import org.bouncycastle.openssl.jcajce.JcaPEMWriter;
import org.bouncycastle.openssl.jcajce.JcaPKCS8Generator;
import org.bouncycastle.operator.OperatorCreationException;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

/**
 * A development certificate authority and node certificates, as PEM files in one folder: {@code
 * ca.pem} and {@code ca-key.pem}, and per node {@code NODE.pem} (the node's certificate, then the
 * CA's) and {@code NODE-key.pem} (PKCS#8). Keys are ECDSA P-256; node certificates serve both as
 * server and as client certificates, for the node's name, {@code localhost}, {@code 127.0.0.1},
 * {@code ::1} and the hosts given. A folder that already holds a CA keeps it, so nodes added later
 * join the same cluster. For development and tests: a production cluster's CA lives elsewhere.
 */
public final class DevCertificates {

  private static final Pattern NODE_NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]*");
  private static final String SIGNATURE = "SHA256withECDSA";
  private static final SecureRandom RANDOM = new SecureRandom();

  private DevCertificates() {}

  /** The CA's certificate in {@code dir}: what nodes and clients trust. */
  public static Path caCertificate(Path dir) {
    return dir.resolve("ca.pem");
  }

  /** The CA's private key in {@code dir}. */
  public static Path caKey(Path dir) {
    return dir.resolve("ca-key.pem");
  }

  /** {@code node}'s certificate chain in {@code dir}. */
  public static Path certificate(Path dir, String node) {
    return dir.resolve(requireNodeName(node) + ".pem");
  }

  /** {@code node}'s private key in {@code dir}. */
  public static Path key(Path dir, String node) {
    return dir.resolve(requireNodeName(node) + "-key.pem");
  }

  /**
   * Writes a certificate and key for each of {@code nodes} into {@code dir}, signed by the CA
   * there, which is made first when the folder has none. Files are replaced atomically, so a
   * node rereading them never sees half a file, and are readable by their owner only.
   *
   * @param hosts further DNS names or IP addresses every node certificate is valid for
   * @param validity how long the certificates (and a new CA) are valid from now
   * @throws IllegalArgumentException for a node name that is not a plain file name, or an empty list
   */
  public static void write(Path dir, List<String> nodes, List<String> hosts, Duration validity) {
    if (nodes.isEmpty()) {
      throw new IllegalArgumentException("give at least one node name to write a certificate for");
    }
    nodes.forEach(DevCertificates::requireNodeName);
    try {
      Files.createDirectories(dir);
      Authority ca = Files.exists(caCertificate(dir)) && Files.exists(caKey(dir)) ? readAuthority(dir)
          : newAuthority(dir, validity);
      for (String node : nodes) {
        KeyPair pair = newKeyPair();
        X509Certificate leaf = issue(ca, node, pair.getPublic(), hosts, validity);
        writeAtomically(certificate(dir, node), pem(leaf) + pem(ca.certificate()));
        writeAtomically(key(dir, node), pem(new JcaPKCS8Generator(pair.getPrivate(), null)));
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write certificates into " + dir + ": " + e.getMessage(), e);
    } catch (GeneralSecurityException | OperatorCreationException e) {
      throw new IllegalStateException("cannot make certificates: " + e.getMessage(), e);
    }
  }

  private record Authority(X509Certificate certificate, PrivateKey key) {}

  private static Authority newAuthority(Path dir, Duration validity)
      throws GeneralSecurityException, OperatorCreationException, IOException {
    KeyPair pair = newKeyPair();
    X500Name name = new X500Name("CN=Owlery development CA " + Long.toHexString(RANDOM.nextLong()));
    Instant now = Instant.now();
    X509v3CertificateBuilder builder = new JcaX509v3CertificateBuilder(name, serial(),
        Date.from(now.minus(Duration.ofMinutes(5))), Date.from(now.plus(validity)), name, pair.getPublic());
    JcaX509ExtensionUtils extensions = new JcaX509ExtensionUtils();
    builder.addExtension(Extension.basicConstraints, true, new BasicConstraints(0));
    builder.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign));
    builder.addExtension(Extension.subjectKeyIdentifier, false, extensions.createSubjectKeyIdentifier(pair.getPublic()));
    X509Certificate certificate = sign(builder, pair.getPrivate());
    writeAtomically(caCertificate(dir), pem(certificate));
    writeAtomically(caKey(dir), pem(new JcaPKCS8Generator(pair.getPrivate(), null)));
    return new Authority(certificate, pair.getPrivate());
  }

  private static Authority readAuthority(Path dir) throws IOException, GeneralSecurityException {
    X509Certificate certificate;
    PrivateKey key;
    try (Reader reader = Files.newBufferedReader(caCertificate(dir)); PEMParser parser = new PEMParser(reader)) {
      if (!(parser.readObject() instanceof X509CertificateHolder holder)) {
        throw new IllegalArgumentException(caCertificate(dir) + " holds no PEM certificate");
      }
      certificate = new JcaX509CertificateConverter().getCertificate(holder);
    }
    try (Reader reader = Files.newBufferedReader(caKey(dir)); PEMParser parser = new PEMParser(reader)) {
      if (!(parser.readObject() instanceof PrivateKeyInfo info)) {
        throw new IllegalArgumentException(caKey(dir) + " holds no PKCS#8 private key");
      }
      key = new JcaPEMKeyConverter().getPrivateKey(info);
    }
    return new Authority(certificate, key);
  }

  private static X509Certificate issue(Authority ca, String node, PublicKey publicKey, List<String> hosts,
      Duration validity) throws GeneralSecurityException, OperatorCreationException, IOException {
    Instant now = Instant.now();
    X509v3CertificateBuilder builder = new JcaX509v3CertificateBuilder(ca.certificate(), serial(),
        Date.from(now.minus(Duration.ofMinutes(5))), Date.from(now.plus(validity)), new X500Name("CN=" + node),
        publicKey);
    JcaX509ExtensionUtils extensions = new JcaX509ExtensionUtils();
    builder.addExtension(Extension.basicConstraints, true, new BasicConstraints(false));
    builder.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.digitalSignature));
    builder.addExtension(Extension.extendedKeyUsage, false,
        new ExtendedKeyUsage(new KeyPurposeId[] {KeyPurposeId.id_kp_serverAuth, KeyPurposeId.id_kp_clientAuth}));
    builder.addExtension(Extension.subjectAlternativeName, false, subjectAlternativeNames(node, hosts));
    builder.addExtension(Extension.authorityKeyIdentifier, false,
        extensions.createAuthorityKeyIdentifier(ca.certificate()));
    return sign(builder, ca.key());
  }

  private static GeneralNames subjectAlternativeNames(String node, List<String> hosts) throws UnknownHostException {
    Set<String> names = new LinkedHashSet<>(List.of(node, "localhost", "127.0.0.1", "::1"));
    names.addAll(hosts);
    List<GeneralName> general = new ArrayList<>();
    for (String name : names) {
      if (name.isBlank()) {
        throw new IllegalArgumentException("a host name must not be blank. Given: " + hosts);
      }
      general.add(isIpLiteral(name)
          ? new GeneralName(GeneralName.iPAddress, InetAddress.getByName(name).getHostAddress())
          : new GeneralName(GeneralName.dNSName, name));
    }
    return new GeneralNames(general.toArray(GeneralName[]::new));
  }

  /** An IPv4 or IPv6 literal (never looked up: getByName parses literals only). */
  private static boolean isIpLiteral(String host) {
    return host.contains(":") || host.matches("[0-9]{1,3}(\\.[0-9]{1,3}){3}");
  }

  private static X509Certificate sign(X509v3CertificateBuilder builder, PrivateKey signer)
      throws OperatorCreationException, GeneralSecurityException {
    return new JcaX509CertificateConverter().getCertificate(builder.build(new JcaContentSignerBuilder(SIGNATURE)
        .build(signer)));
  }

  private static KeyPair newKeyPair() throws GeneralSecurityException {
    KeyPairGenerator generator = KeyPairGenerator.getInstance("EC");
    generator.initialize(new ECGenParameterSpec("secp256r1"), RANDOM);
    return generator.generateKeyPair();
  }

  private static BigInteger serial() {
    return new BigInteger(127, RANDOM).add(BigInteger.ONE);
  }

  private static String pem(Object object) throws IOException {
    StringWriter text = new StringWriter();
    try (JcaPEMWriter writer = new JcaPEMWriter(text)) {
      writer.writeObject(object);
    }
    return text.toString();
  }

  /** Through a temporary file, which is created readable by its owner only (and keeps that when moved). */
  private static void writeAtomically(Path file, String content) throws IOException {
    Path tmp = Files.createTempFile(file.toAbsolutePath().getParent(), "." + file.getFileName(), ".tmp");
    try {
      Files.writeString(tmp, content);
      Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    } finally {
      Files.deleteIfExists(tmp);
    }
  }

  private static String requireNodeName(String node) {
    if (node == null || !NODE_NAME.matcher(node).matches()) {
      throw new IllegalArgumentException("a node name is letters, digits, '.', '_' and '-' (it names its files). "
          + "Given: '" + node + "'");
    }
    return node;
  }
}
