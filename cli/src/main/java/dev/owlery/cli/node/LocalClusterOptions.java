package dev.owlery.cli.node;

import java.nio.file.Path;
import java.util.List;

/**
 * How {@link LocalCluster#start(Path, int, int, int, java.io.PrintWriter, LocalClusterOptions)}
 * starts its nodes, beyond the model and the cluster's sizes.
 *
 * @param jvmOptions extra options for every child JVM (e.g. -Xmx)
 * @param coordinatorArgs added to the coordinator's command line (e.g. {@code --max-num-seqs=32})
 * @param apiKey the key this cluster's own calls send, for a coordinator started with {@code
 *     --api-keys} among {@code coordinatorArgs}; null: none
 * @param certs with TLS on every link, the folder of the development CA and the nodes'
 *     certificates; null: plaintext
 */
public record LocalClusterOptions(List<String> jvmOptions, List<String> coordinatorArgs, String apiKey,
    Path certs) {

  /** No extra JVM or coordinator options, no API key, plaintext. */
  public static final LocalClusterOptions DEFAULT = new LocalClusterOptions(List.of(), List.of(), null, null);

  public LocalClusterOptions {
    jvmOptions = List.copyOf(jvmOptions);
    coordinatorArgs = List.copyOf(coordinatorArgs);
    certs = certs == null ? null : certs.toAbsolutePath();
  }

  public LocalClusterOptions withJvmOptions(List<String> options) {
    return new LocalClusterOptions(options, coordinatorArgs, apiKey, certs);
  }

  public LocalClusterOptions withCoordinatorArgs(List<String> args) {
    return new LocalClusterOptions(jvmOptions, args, apiKey, certs);
  }

  public LocalClusterOptions withApiKey(String key) {
    return new LocalClusterOptions(jvmOptions, coordinatorArgs, key, certs);
  }

  public LocalClusterOptions withCerts(Path folder) {
    return new LocalClusterOptions(jvmOptions, coordinatorArgs, apiKey, folder);
  }
}
