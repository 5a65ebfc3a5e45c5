package dev.owlery.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The README and the docs stand alone: every relative link points at a file of this repository,
 * and none reaches outside it.
 */
class DocumentationLinksTest {

  private static final Pattern LINK = Pattern.compile("\\]\\(([^)\\s]+)\\)");
  /** Fenced blocks and inline code, where "](" is code, not a link. */
  private static final Pattern CODE = Pattern.compile("(?s)```.*?```|`[^`\\n]*`");
  private static final Path ROOT = repositoryRoot();

  @Test
  void relativeLinksResolveInsideTheRepository() throws IOException {
    List<String> broken = new ArrayList<>();
    for (Path doc : documents()) {
      Matcher matcher = LINK.matcher(CODE.matcher(Files.readString(doc)).replaceAll(""));
      while (matcher.find()) {
        String target = matcher.group(1);
        if (target.startsWith("http://") || target.startsWith("https://") || target.startsWith("#")) {
          continue;
        }
        Path file = doc.getParent().resolve(target.replaceFirst("#.*$", "")).normalize();
        if (!file.startsWith(ROOT) || !Files.exists(file)) {
          broken.add(ROOT.relativize(doc) + " -> " + target);
        }
      }
    }
    assertThat(broken).as("links that do not resolve to a file of the repository").isEmpty();
  }

  @Test
  void theReadmeNamesNoFileOutsideTheRepository() throws IOException {
    for (Path doc : documents()) {
      assertThat(Files.readString(doc)).as("%s", ROOT.relativize(doc)).doesNotContain("../shared");
    }
  }

  @Test
  void theReadmeLinksTheDocs() throws IOException {
    String readme = Files.readString(ROOT.resolve("README.md"));
    for (String doc : List.of("docs/architecture.md", "docs/model.md", "docs/operations.md", "docs/design-notes.md")) {
      assertThat(readme).contains("](" + doc + ")");
    }
  }

  private static List<Path> documents() throws IOException {
    List<Path> docs = new ArrayList<>(List.of(ROOT.resolve("README.md"), ROOT.resolve("testdata/README.md")));
    try (Stream<Path> files = Files.list(ROOT.resolve("docs"))) {
      files.filter(file -> file.toString().endsWith(".md")).sorted().forEach(docs::add);
    }
    return docs;
  }

  private static Path repositoryRoot() {
    for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
      if (Files.isRegularFile(dir.resolve("mvnw")) && Files.isDirectory(dir.resolve("docs"))) {
        return dir.normalize();
      }
    }
    throw new IllegalStateException("no repository root (mvnw, docs/) above " + Path.of("").toAbsolutePath());
  }
}
