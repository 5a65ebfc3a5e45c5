package dev.owlery.cli.node;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Network namespaces joined by a bridge, for tests of nodes that talk over real interfaces: one
 * bridge in the root namespace holding {@link #bridgeAddress()}, and per namespace a veth pair
 * whose host end is a bridge port and whose other end is the namespace's {@code eth0} with {@link
 * #address(int)}, all in one {@code 10.213.X.0/24} no host route touches. Faults act on a
 * namespace's host end: {@link #linkDown}, {@link #limitBandwidth} (tbf).
 *
 * <p>Names carry this JVM's pid ({@code owlnf<pid>b} the bridge, {@code owlnf<pid>h<i>} the host
 * ends, {@code owlnf<pid>-<i>} the namespaces), so concurrent runs do not collide, and {@link
 * #create} first deletes what runs that died left behind (their pid is gone). {@link #close()}
 * deletes the namespaces (their veths with them) and the bridge.
 */
final class NetworkNamespaces implements AutoCloseable {

  static final String PREFIX = "owlnf";
  /** A name this class gives, in a line of {@code ip netns list} or {@code ip -o link show}. */
  private static final Pattern NAME = Pattern.compile("(" + PREFIX + "[0-9a-z-]+)");
  /** The pid in such a name. */
  private static final Pattern LEFTOVER = Pattern.compile(PREFIX + "(\\d+)[-bhp]");

  private final String tag;
  private final int subnet;
  private final int count;

  private NetworkNamespaces(String tag, int subnet, int count) {
    this.tag = tag;
    this.subnet = subnet;
    this.count = count;
  }

  /** Why namespaces cannot be made here (not root, no {@code ip netns}); null when they can. */
  static String unavailableReason() {
    try {
      String uid = Files.readAllLines(Path.of("/proc/self/status")).stream().filter(line -> line.startsWith("Uid:"))
          .map(line -> line.split("\\s+")[1]).findFirst().orElse("unknown");
      if (!uid.equals("0")) {
        return "it needs root to create network namespaces, and runs as uid " + uid;
      }
      Result netns = run(List.of("ip", "netns", "list"));
      return netns.status() == 0 ? null : "`ip netns list` failed: " + netns.output();
    } catch (IOException e) {
      return "`ip` cannot be run: " + e.getMessage();
    }
  }

  /** A bridge and {@code count} namespaces (at most 9), each with its link up and its address. */
  static NetworkNamespaces create(int count) {
    if (count < 1 || count > 9) {
      throw new IllegalArgumentException("count must be in 1..9, got " + count);
    }
    removeLeftovers();
    NetworkNamespaces namespaces = new NetworkNamespaces(PREFIX + ProcessHandle.current().pid(), freeSubnet(), count);
    try {
      namespaces.build();
      return namespaces;
    } catch (RuntimeException e) {
      namespaces.close();
      throw e;
    }
  }

  private void build() {
    ip("link", "add", bridge(), "type", "bridge");
    ip("addr", "add", bridgeAddress() + "/24", "dev", bridge());
    ip("link", "set", bridge(), "up");
    for (int i = 0; i < count; i++) {
      String peer = tag + "p" + i;
      ip("netns", "add", namespace(i));
      ip("link", "add", hostEnd(i), "type", "veth", "peer", "name", peer);
      ip("link", "set", hostEnd(i), "master", bridge(), "up");
      ip("link", "set", peer, "netns", namespace(i));
      ip("-n", namespace(i), "link", "set", peer, "name", "eth0");
      ip("-n", namespace(i), "addr", "add", address(i) + "/24", "dev", "eth0");
      ip("-n", namespace(i), "link", "set", "eth0", "up");
      ip("-n", namespace(i), "link", "set", "lo", "up");
    }
  }

  /** The root namespace's address on the bridge: what the test itself connects from. */
  String bridgeAddress() {
    return "10.213.%d.1".formatted(subnet);
  }

  /** Namespace {@code i}'s address. */
  String address(int i) {
    return "10.213.%d.%d".formatted(subnet, 10 + i);
  }

  /** The namespaces' block, e.g. {@code 10.213.40.0/24}. */
  String cidr() {
    return "10.213.%d.0/24".formatted(subnet);
  }

  /** What runs a command inside namespace {@code i}: the command's words follow. */
  List<String> exec(int i) {
    return List.of("ip", "netns", "exec", namespace(i));
  }

  /** Takes namespace {@code i}'s link down: its packets are dropped, no connection is reset. */
  void linkDown(int i) {
    ip("link", "set", hostEnd(i), "down");
  }

  void linkUp(int i) {
    ip("link", "set", hostEnd(i), "up");
  }

  /** Limits namespace {@code i}'s traffic both ways with a token bucket, e.g. {@code 1mbit}. */
  void limitBandwidth(int i, String rate) {
    List<String> tbf = List.of("root", "tbf", "rate", rate, "burst", "32kbit", "latency", "400ms");
    List<String> host = new ArrayList<>(List.of("qdisc", "add", "dev", hostEnd(i)));
    host.addAll(tbf);
    tc(host);
    List<String> inside = new ArrayList<>(List.of("-n", namespace(i), "qdisc", "add", "dev", "eth0"));
    inside.addAll(tbf);
    tc(inside);
  }

  void removeBandwidthLimit(int i) {
    tc(List.of("qdisc", "del", "dev", hostEnd(i), "root"));
    tc(List.of("-n", namespace(i), "qdisc", "del", "dev", "eth0", "root"));
  }

  /** Deletes the namespaces (with their veths) and the bridge; what is already gone is skipped. */
  @Override
  public void close() {
    for (int i = 0; i < count; i++) {
      quietly(List.of("ip", "netns", "del", namespace(i)));
      quietly(List.of("ip", "link", "del", hostEnd(i)));
    }
    quietly(List.of("ip", "link", "del", bridge()));
  }

  private String namespace(int i) {
    return tag + "-" + i;
  }

  private String hostEnd(int i) {
    return tag + "h" + i;
  }

  private String bridge() {
    return tag + "b";
  }

  /** Deletes namespaces and links of earlier runs whose process is gone (a crash, a kill). */
  private static void removeLeftovers() {
    for (String name : names(List.of("ip", "netns", "list"))) {
      if (leftover(name)) {
        quietly(List.of("ip", "netns", "del", name));
      }
    }
    for (String name : names(List.of("ip", "-o", "link", "show"))) {
      if (leftover(name)) {
        quietly(List.of("ip", "link", "del", name));
      }
    }
  }

  /** The names starting with the prefix in {@code command}'s output ("NAME ..." or "N: NAME@...: ..."). */
  private static List<String> names(List<String> command) {
    List<String> names = new ArrayList<>();
    for (String line : mustRun(command).lines().toList()) {
      Matcher name = NAME.matcher(line);
      if (name.find()) {
        names.add(name.group(1));
      }
    }
    return names;
  }

  private static boolean leftover(String name) {
    Matcher pid = LEFTOVER.matcher(name);
    return pid.lookingAt() && ProcessHandle.of(Long.parseLong(pid.group(1))).map(p -> !p.isAlive()).orElse(true);
  }

  /** A third octet X whose 10.213.X.0/24 no route of this host covers or lies in (the default route aside). */
  private static int freeSubnet() {
    int first = (int) (ProcessHandle.current().pid() % 200);
    for (int k = 0; k < 200; k++) {
      int candidate = 20 + (first + k) % 200;
      String block = "10.213.%d.0/24".formatted(candidate);
      boolean inside = !mustRun(List.of("ip", "-4", "route", "show", "to", "root", block)).isBlank();
      boolean covering = mustRun(List.of("ip", "-4", "route", "show", "to", "match", block)).lines()
          .anyMatch(line -> !line.startsWith("default"));
      if (!inside && !covering) {
        return candidate;
      }
    }
    throw new IllegalStateException("every 10.213.X.0/24 for X in 20..219 clashes with a route of this host");
  }

  private static void ip(String... args) {
    List<String> command = new ArrayList<>(List.of("ip"));
    command.addAll(List.of(args));
    mustRun(command);
  }

  private static void tc(List<String> args) {
    List<String> command = new ArrayList<>(List.of("tc"));
    command.addAll(args);
    mustRun(command);
  }

  /** Runs {@code command} (ip, tc), returning its output; fails with that output on a non-zero exit. */
  static String mustRun(List<String> command) {
    try {
      Result result = run(command);
      if (result.status() != 0) {
        throw new IllegalStateException("`%s` failed with status %d: %s".formatted(String.join(" ", command),
            result.status(), result.output().strip()));
      }
      return result.output();
    } catch (IOException e) {
      throw new UncheckedIOException("cannot run `" + String.join(" ", command) + "`: " + e.getMessage(), e);
    }
  }

  private static void quietly(List<String> command) {
    try {
      run(command);
    } catch (IOException e) {
      // gone already, or ip is gone: nothing left to delete
    }
  }

  private record Result(int status, String output) {}

  private static Result run(List<String> command) throws IOException {
    Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
    try {
      String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      if (!process.waitFor(10, TimeUnit.SECONDS)) {
        process.destroyForcibly();
        return new Result(-1, "no exit within 10 s");
      }
      return new Result(process.exitValue(), output);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      process.destroyForcibly();
      throw new IOException("interrupted", e);
    }
  }
}
