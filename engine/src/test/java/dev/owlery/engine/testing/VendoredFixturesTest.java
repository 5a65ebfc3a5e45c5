package dev.owlery.engine.testing;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The fixtures in {@code testdata/} are the public ones, byte for byte: every file has the sha256
 * that {@code testdata/SHA256SUMS} records, and every file but the READMEs is listed there. The fuzz
 * corpus in {@code testdata/fuzz/} (which grows with every crash found) and the bad-input corpus in
 * {@code testdata/bad-inputs/} are our own, so they are not listed.
 */
class VendoredFixturesTest {

  private static final Path TESTDATA = repositoryTestdata();

  @Test
  void everyVendoredFileHasItsRecordedSha256() throws IOException {
    List<String> lines = Files.readAllLines(TESTDATA.resolve("SHA256SUMS"));
    assertThat(lines).hasSizeGreaterThanOrEqualTo(21);
    for (String line : lines) {
      String[] parts = line.split(" {2}", 2);
      assertThat(parts).as("SHA256SUMS line '%s' (sha256sum format)", line).hasSize(2);
      Path file = TESTDATA.resolve(parts[1]);
      assertThat(file).as("listed in SHA256SUMS").isRegularFile();
      assertThat(sha256(file)).as("sha256 of %s", file).isEqualTo(parts[0]);
    }
  }

  @Test
  void everyDataFileIsListed() throws IOException {
    Set<String> listed = new TreeSet<>();
    for (String line : Files.readAllLines(TESTDATA.resolve("SHA256SUMS"))) {
      listed.add(line.split(" {2}", 2)[1]);
    }
    Set<String> present = new TreeSet<>();
    try (Stream<Path> files = Files.walk(TESTDATA)) {
      files.filter(Files::isRegularFile)
          .map(file -> TESTDATA.relativize(file).toString().replace('\\', '/'))
          .filter(name -> !name.equals("SHA256SUMS") && !name.endsWith("README.md") && !name.startsWith("fuzz/")
              && !name.startsWith("bad-inputs/"))
          .forEach(present::add);
    }
    assertThat(present).isEqualTo(listed);
  }

  @Test
  void eachFixtureFolderHasAReadme() {
    for (String folder : List.of("tiny-owl2", "stories260k", "llama2-tokenizer")) {
      assertThat(TESTDATA.resolve(folder).resolve("README.md")).isRegularFile();
    }
  }

  /** The repository's testdata/, whatever OWLERY_FIXTURES says: this test checks the vendored copy. */
  private static Path repositoryTestdata() {
    for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
      if (Files.isRegularFile(dir.resolve("testdata").resolve("SHA256SUMS"))) {
        return dir.resolve("testdata");
      }
    }
    throw new IllegalStateException("no testdata/SHA256SUMS above " + Path.of("").toAbsolutePath());
  }

  private static String sha256(Path file) throws IOException {
    try (InputStream in = Files.newInputStream(file)) {
      MessageDigest digest = MessageDigest.getInstance("SHA-256");
      byte[] buffer = new byte[1 << 16];
      for (int n; (n = in.read(buffer)) > 0; ) {
        digest.update(buffer, 0, n);
      }
      return HexFormat.of().formatHex(digest.digest());
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
