package dev.owlery.cli;

import dev.owlery.cluster.tls.DevCertificates;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code owlery certs}: a development CA and a certificate per node, for TLS on every link. */
@Command(name = "certs", mixinStandardHelpOptions = true,
    description = "Write a development CA (ca.pem, ca-key.pem; kept when the folder has one) and, per node, NODE.pem "
        + "and NODE-key.pem: for --cluster-ca/--node-cert/--node-key, --tls-cert/--tls-key and clients' --tls-ca.")
public final class CertsCommand implements Callable<Integer> {

  @Spec
  CommandSpec spec;

  @Option(names = "--out", required = true, paramLabel = "DIR", description = "The folder to write into (made when missing).")
  Path out;

  @Option(names = "--nodes", required = true, split = ",", paramLabel = "NAME",
      description = "The nodes (and clients) to write certificates for, e.g. coordinator,vision-0,shard-0,shard-1.")
  List<String> nodes;

  @Option(names = "--hosts", split = ",", paramLabel = "HOST",
      description = "DNS names or IP addresses every certificate is valid for besides the node's name, localhost, "
          + "127.0.0.1 and ::1, e.g. the coordinator's public name.")
  List<String> hosts = new ArrayList<>();

  @Option(names = "--days", defaultValue = "365", description = "How long the certificates are valid (default ${DEFAULT-VALUE}).")
  int days;

  @Override
  public Integer call() {
    if (days < 1) {
      throw new IllegalArgumentException("--days must be >= 1, got " + days);
    }
    DevCertificates.write(out, nodes, hosts, Duration.ofDays(days));
    PrintWriter err = spec.commandLine().getErr();
    err.printf("owlery certs: wrote certificates for %s into %s, signed by %s (a development CA: keep ca-key.pem "
        + "private)%n", String.join(", ", nodes), out, DevCertificates.caCertificate(out));
    err.flush();
    return 0;
  }
}
