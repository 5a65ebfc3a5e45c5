package dev.owlery.cli.node;

import dev.owlery.cli.Owlery;
import dev.owlery.engine.testing.Fixtures;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.jar.JarEntry;
import java.util.jar.JarOutputStream;
import java.util.stream.Stream;
import org.junit.platform.launcher.LauncherSession;
import org.junit.platform.launcher.LauncherSessionListener;
import picocli.CommandLine;

/**
 * Before this module's tests: makes the {@link NodeAotCaches AOT caches} their nodes start from,
 * so that the many short-lived node JVMs of the cluster tests spend less of the two cores loading
 * classes. The nodes' classpath is this JVM's with every folder (this module's classes and test
 * classes) packed into a jar, since the JVM caches no class from a folder; a training cluster
 * (tiny-owl2: a coordinator, a shard worker and a vision worker, recording) answers one
 * multimodal request and stops, and each node writes its role's cache as it exits. Both are kept
 * under {@code target/node-aot/<fingerprint of the classpath and the JVM>} and made again only
 * when that changes. Where training fails the tests run as before, without caches, and the reason
 * is printed.
 */
public final class NodeAotTraining implements LauncherSessionListener {

  private static final List<String> ROLES = List.of("coordinator", "shard-worker", "vision-worker");
  private static final List<String> JVM_OPTIONS = TestNodeJvm.with("-Xmx512m");
  private static final Duration READY = Duration.ofSeconds(180);
  private static final Duration EXIT = Duration.ofSeconds(120);
  private static final Path TRAINING_LOG = Path.of("target", "node-aot-training.log").toAbsolutePath();

  @Override
  public void launcherSessionOpened(LauncherSession session) {
    if (System.getProperty(NodeAotCaches.FOLDER) != null) {
      return;
    }
    long start = System.nanoTime();
    Path root = Path.of("target", "node-aot").toAbsolutePath();
    try {
      List<Path> classpath = Stream.of(System.getProperty("java.class.path").split(java.io.File.pathSeparator))
          .filter(entry -> !entry.isEmpty()).map(Path::of).toList();
      Path folder = root.resolve(fingerprint(classpath));
      Path done = folder.resolve("complete");
      String nodeClasspath;
      boolean made = !Files.exists(done);
      if (made) {
        deleteRecursively(root);
        Files.createDirectories(folder);
        nodeClasspath = packFolders(classpath, folder.resolve("classpath"));
      } else {
        nodeClasspath = Files.readString(done);
      }
      System.setProperty(NodeAotCaches.CLASSPATH, nodeClasspath);
      System.setProperty(NodeAotCaches.FOLDER, folder.toString());
      if (made) {
        train(folder);
        Files.writeString(done, nodeClasspath);
      }
      System.err.printf("NodeAotTraining: node JVMs start from the AOT caches in %s (%s in %.1f s)%n", folder,
          made ? "made" : "found", (System.nanoTime() - start) / 1e9);
    } catch (IOException | RuntimeException e) {
      System.clearProperty(NodeAotCaches.CLASSPATH);
      System.clearProperty(NodeAotCaches.FOLDER);
      System.err.println("NodeAotTraining: node JVMs start without AOT caches: " + e.getMessage());
    }
  }

  /**
   * Starts the training cluster (the nodes' classpath and {@code folder} already set as system
   * properties) with the nodes recording their classes into {@code folder}, sends it one request
   * with an image, stops every node with SIGTERM, waiting for each to exit (writing what it
   * recorded takes the JVM a few seconds), and makes the caches.
   */
  private static void train(Path folder) throws IOException {
    Path model = Fixtures.tinyOwl2();
    StringWriter log = new StringWriter();
    System.setProperty(NodeAotCaches.RECORD, "true");
    try (LocalCluster cluster = LocalCluster.start(model, 1, 1, 0, new PrintWriter(log, true), JVM_OPTIONS)) {
      cluster.awaitReady(1, READY);
      StringWriter out = new StringWriter();
      StringWriter err = new StringWriter();
      CommandLine cli = Owlery.commandLine();
      cli.setOut(new PrintWriter(out, true));
      cli.setErr(new PrintWriter(err, true));
      int code = cli.execute("generate", "--server", cluster.coordinatorAddress(), "--prompt",
          "USER: <|image|>Describe the image. ASSISTANT:", "--image", model.resolve("test_image.png").toString(),
          "--max-new-tokens", "4", "--template", "none");
      if (code != 0) {
        throw new IllegalStateException("the training request failed: " + err);
      }
      for (LocalCluster.NodeProcess node : cluster.nodes()) {
        node.process().destroy();
      }
      for (LocalCluster.NodeProcess node : cluster.nodes()) {
        if (!node.process().waitFor(EXIT.toMillis(), TimeUnit.MILLISECONDS)) {
          throw new IllegalStateException(node.nodeId() + " did not exit within " + EXIT.toSeconds() + " s");
        }
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while training", e);
    } finally {
      System.clearProperty(NodeAotCaches.RECORD);
      Files.writeString(TRAINING_LOG, log.toString());
    }
    try {
      NodeAotCaches.create(folder, ROLES, JVM_OPTIONS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while training", e);
    }
  }

  /**
   * This classpath with every folder packed into a jar under {@code jars} (the jars in the order of
   * the folders they replace), as a classpath string.
   */
  private static String packFolders(List<Path> classpath, Path jars) throws IOException {
    Files.createDirectories(jars);
    List<String> entries = new ArrayList<>();
    for (Path entry : classpath) {
      if (Files.isDirectory(entry)) {
        Path jar = jars.resolve(entries.size() + "-" + entry.getFileName() + ".jar");
        pack(entry, jar);
        entries.add(jar.toString());
      } else {
        entries.add(entry.toString());
      }
    }
    return String.join(java.io.File.pathSeparator, entries);
  }

  private static void pack(Path folder, Path jar) throws IOException {
    try (OutputStream file = Files.newOutputStream(jar); JarOutputStream out = new JarOutputStream(file);
        Stream<Path> files = Files.walk(folder)) {
      for (Path path : files.filter(Files::isRegularFile).sorted().toList()) {
        out.putNextEntry(new JarEntry(folder.relativize(path).toString().replace('\\', '/')));
        Files.copy(path, out);
        out.closeEntry();
      }
    }
  }

  /**
   * A digest of the JVM and of every classpath entry: path, size and modification time of a jar,
   * and of every file in a folder.
   */
  private static String fingerprint(List<Path> classpath) throws IOException {
    MessageDigest digest;
    try {
      digest = MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
    StringBuilder text = new StringBuilder(System.getProperty("java.home")).append('\n')
        .append(System.getProperty("java.vm.version")).append('\n').append(TestNodeJvm.with()).append('\n');
    for (Path entry : classpath) {
      if (Files.isDirectory(entry)) {
        try (Stream<Path> files = Files.walk(entry)) {
          for (Path path : files.filter(Files::isRegularFile).sorted().toList()) {
            describe(text, path);
          }
        }
      } else if (Files.exists(entry)) {
        describe(text, entry);
      }
    }
    byte[] hash = digest.digest(text.toString().getBytes(StandardCharsets.UTF_8));
    return HexFormat.of().formatHex(hash, 0, 8);
  }

  private static void describe(StringBuilder text, Path file) throws IOException {
    text.append(file).append(' ').append(Files.size(file)).append(' ').append(Files.getLastModifiedTime(file).toMillis())
        .append('\n');
  }

  private static void deleteRecursively(Path root) throws IOException {
    if (!Files.exists(root)) {
      return;
    }
    try (Stream<Path> paths = Files.walk(root)) {
      for (Path path : paths.sorted((a, b) -> b.compareTo(a)).toList()) {
        Files.delete(path);
      }
    } catch (UncheckedIOException e) {
      throw e.getCause();
    }
  }
}
