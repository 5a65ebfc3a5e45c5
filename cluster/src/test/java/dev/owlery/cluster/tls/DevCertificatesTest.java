package dev.owlery.cluster.tls;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The development CA and node certificates, as the JDK reads them back. */
class DevCertificatesTest {

  @TempDir Path dir;

  private static List<X509Certificate> read(Path pem) throws Exception {
    try (InputStream in = Files.newInputStream(pem)) {
      List<X509Certificate> chain = new ArrayList<>();
      CertificateFactory.getInstance("X.509").generateCertificates(in).forEach(c -> chain.add((X509Certificate) c));
      return chain;
    }
  }

  @Test
  void aNodeCertificateIsSignedByTheCaAndNamesTheNodeAndItsHosts() throws Exception {
    DevCertificates.write(dir, List.of("shard-0"), List.of("owlery.example", "10.1.2.3"), Duration.ofDays(1));
    X509Certificate ca = read(DevCertificates.caCertificate(dir)).getFirst();
    List<X509Certificate> chain = read(DevCertificates.certificate(dir, "shard-0"));

    chain.getFirst().verify(ca.getPublicKey());
    assertThat(chain).hasSize(2).last().isEqualTo(ca);
    assertThat(ca.getBasicConstraints()).isGreaterThanOrEqualTo(0);
    assertThat(chain.getFirst().getSubjectAlternativeNames().stream().map(name -> String.valueOf(name.get(1))))
        .contains("shard-0", "localhost", "127.0.0.1", "owlery.example", "10.1.2.3");
    assertThat(chain.getFirst().getExtendedKeyUsage()).contains("1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2");
    assertThat(Files.getPosixFilePermissions(DevCertificates.key(dir, "shard-0")))
        .containsExactlyInAnyOrder(PosixFilePermission.OWNER_READ, PosixFilePermission.OWNER_WRITE);
  }

  @Test
  void writingIntoAFolderWithACaKeepsIt() throws Exception {
    DevCertificates.write(dir, List.of("shard-0"), List.of(), Duration.ofDays(1));
    X509Certificate ca = read(DevCertificates.caCertificate(dir)).getFirst();

    DevCertificates.write(dir, List.of("shard-1"), List.of(), Duration.ofDays(1));

    assertThat(read(DevCertificates.caCertificate(dir)).getFirst()).isEqualTo(ca);
    read(DevCertificates.certificate(dir, "shard-1")).getFirst().verify(ca.getPublicKey());
  }

  @Test
  void aNodeNameThatIsNoPlainFileNameIsRefused() {
    assertThatThrownBy(() -> DevCertificates.write(dir, List.of("../etc"), List.of(), Duration.ofDays(1)))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("'../etc'");
  }
}
