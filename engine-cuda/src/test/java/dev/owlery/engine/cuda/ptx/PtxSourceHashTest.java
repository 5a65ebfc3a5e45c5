package dev.owlery.engine.cuda.ptx;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The checked-in PTX is what scripts/build-ptx.sh makes of today's CUDA C: its first line carries the
 * SHA-256 of the .cu file followed by the headers it includes, and that must equal the digest of the
 * sources in the tree. A kernel edited without rerunning the script fails here.
 */
class PtxSourceHashTest {

  private static final Path SOURCES = Path.of("src/main/cuda");
  private static final Pattern INCLUDE = Pattern.compile("^\\s*#\\s*include\\s*\"([^\"]+)\"", Pattern.MULTILINE);
  private static final Pattern HASH_LINE = Pattern.compile("^// owlery-source-sha256: ([0-9a-f]{64})\n");

  @Test
  void everyPtxCarriesTheHashOfItsCurrentSource() throws IOException {
    for (PtxModule module : PtxModule.values()) {
      Matcher line = HASH_LINE.matcher(module.ptx());
      assertThat(line.lookingAt()).as("%s starts with its source hash line", module.resourcePath()).isTrue();
      assertThat(line.group(1))
          .as("%s is stale: its source changed since scripts/build-ptx.sh last ran", module.resourcePath())
          .isEqualTo(sourceDigest(SOURCES.resolve(module.fileName() + ".cu")));
    }
  }

  @Test
  void everyCudaSourceIsACatalogueModule() throws IOException {
    List<String> sources;
    try (Stream<Path> files = Files.list(SOURCES)) {
      sources = files.map(p -> p.getFileName().toString()).filter(n -> n.endsWith(".cu"))
          .map(n -> n.substring(0, n.length() - 3)).sorted().toList();
    }
    assertThat(sources).containsExactlyInAnyOrderElementsOf(
        Arrays.stream(PtxModule.values()).map(PtxModule::fileName).toList());
  }

  /** SHA-256 of the .cu bytes followed by the bytes of each header it includes, in order (as build-ptx.sh hashes them). */
  private static String sourceDigest(Path cu) throws IOException {
    MessageDigest sha256 = sha256();
    String text = Files.readString(cu);
    sha256.update(Files.readAllBytes(cu));
    Matcher include = INCLUDE.matcher(text);
    while (include.find()) {
      sha256.update(Files.readAllBytes(cu.resolveSibling(include.group(1))));
    }
    return HexFormat.of().formatHex(sha256.digest());
  }

  private static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new UncheckedIOException(new IOException("SHA-256 is missing from this JDK", e));
    }
  }
}
