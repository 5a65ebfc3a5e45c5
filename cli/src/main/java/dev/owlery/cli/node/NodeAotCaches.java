package dev.owlery.cli.node;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The JDK's ahead-of-time caches (JEP 483) that the node JVMs of a local cluster may start from,
 * one per role: the classes a training run of that role loaded and linked, mapped at start instead
 * of read, verified and linked again. On 2 cores a shard worker then serves after 1.6 s instead of
 * 2.5 s and uses 2.6 CPU seconds instead of 3.9; a test starting seven clusters ran in 79 s
 * instead of 115.
 *
 * <p>Off unless the system property {@value #FOLDER} names a folder: a node of role {@code R}
 * then starts from {@code FOLDER/R.aot} where that file is, and with {@value #RECORD} set to {@code
 * true} a node whose role has none records the classes it loads, written when it exits (one node
 * per role at a time), from which {@link #create} makes the cache. A cache holds classes from jar
 * files only (the JVM caches none from a directory), and is used only with the classpath it was
 * made with: {@value #CLASSPATH} gives the nodes that classpath instead of this JVM's. A cache
 * that does not match (a jar rebuilt since) is ignored by the JVM, silently. The tests make the
 * caches once per run ({@code NodeAotTraining}); {@code owlery local} runs without them.
 */
public final class NodeAotCaches {

  /** The system property naming the folder of the caches. */
  public static final String FOLDER = "owlery.node.aot-cache";
  /** The system property that makes nodes of a role without a cache record their classes. */
  public static final String RECORD = "owlery.node.aot-record";
  /** The system property giving the nodes' classpath (default: this JVM's). */
  public static final String CLASSPATH = "owlery.node.classpath";

  private NodeAotCaches() {}

  /** The cache of the nodes of {@code role} in {@code folder}. */
  public static Path cache(Path folder, String role) {
    return folder.resolve(role + ".aot");
  }

  /** The classpath of a child JVM: {@value #CLASSPATH}, or this JVM's. */
  static String classpath() {
    return System.getProperty(CLASSPATH, System.getProperty("java.class.path"));
  }

  /**
   * Options for any child JVM: the folder passed on, so that an {@code owlery local} started as a
   * child gives its nodes the caches too (its classpath is already the one given).
   */
  static List<String> inherited() {
    String folder = System.getProperty(FOLDER);
    return folder == null ? List.of() : List.of("-D" + FOLDER + "=" + folder);
  }

  /** Options for a node of {@code role}: start from its cache, or record it (see the class comment). */
  static List<String> options(String role) {
    String folder = System.getProperty(FOLDER);
    if (folder == null) {
      return List.of();
    }
    Path cache = cache(Path.of(folder), role);
    if (Files.isRegularFile(cache)) {
      // a cache that does not match is not worth a line in the node's output
      return List.of("-XX:AOTCache=" + cache, "-Xlog:aot*=off");
    }
    return Boolean.getBoolean(RECORD)
        ? List.of("-XX:AOTMode=record", "-XX:AOTConfiguration=" + configuration(Path.of(folder), role))
        : List.of();
  }

  /**
   * Makes the caches of {@code roles} in {@code folder}, each from the configuration its recording
   * node wrote when it exited (the JDK's second step), with the JVM options those nodes had; one
   * JVM per role, at once.
   *
   * @throws IOException when a JVM cannot be started or makes no cache (with its output)
   */
  public static void create(Path folder, List<String> roles, List<String> jvmOptions)
      throws IOException, InterruptedException {
    List<Process> processes = new ArrayList<>();
    try {
      for (String role : roles) {
        Path configuration = configuration(folder, role);
        if (!Files.isRegularFile(configuration)) {
          throw new IOException("the training " + role + " wrote no AOT configuration " + configuration);
        }
        List<String> options = new ArrayList<>(List.of("-XX:AOTMode=create", "-XX:AOTConfiguration=" + configuration,
            "-XX:AOTCache=" + cache(folder, role)));
        options.addAll(jvmOptions);
        processes.add(new ProcessBuilder(LocalCluster.javaCommand(options)).redirectErrorStream(true)
            .redirectOutput(output(folder, role).toFile()).start());
      }
      for (int i = 0; i < roles.size(); i++) {
        String role = roles.get(i);
        int status = processes.get(i).waitFor();
        if (status != 0 || !Files.isRegularFile(cache(folder, role))) {
          throw new IOException("making the AOT cache of " + role + " failed (exit status " + status + "): "
              + Files.readString(output(folder, role)).strip());
        }
        Files.delete(configuration(folder, role));
      }
    } finally {
      processes.forEach(Process::destroyForcibly);
    }
  }

  private static Path output(Path folder, String role) {
    return folder.resolve(role + ".aot.log");
  }

  private static Path configuration(Path folder, String role) {
    return folder.resolve(role + ".aotconf");
  }
}
