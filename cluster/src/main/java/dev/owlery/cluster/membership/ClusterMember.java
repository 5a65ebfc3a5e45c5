package dev.owlery.cluster.membership;

import com.hazelcast.cluster.Member;
import com.hazelcast.config.Config;
import com.hazelcast.config.JoinConfig;
import com.hazelcast.config.NetworkConfig;
import com.hazelcast.core.Hazelcast;
import com.hazelcast.core.HazelcastInstance;
import com.hazelcast.instance.EndpointQualifier;
import com.hazelcast.instance.impl.DefaultNodeContext;
import com.hazelcast.instance.impl.DefaultNodeExtension;
import com.hazelcast.instance.impl.HazelcastInstanceFactory;
import com.hazelcast.instance.impl.Node;
import com.hazelcast.instance.impl.NodeExtension;
import com.hazelcast.internal.networking.Channel;
import com.hazelcast.internal.networking.ChannelInitializer;
import com.hazelcast.internal.server.ServerContext;
import java.lang.System.Logger.Level;
import java.net.InetSocketAddress;
import java.util.Set;
import java.util.function.Function;
import java.util.UUID;

/**
 * An embedded Hazelcast member: the node's seat in the cluster. Start it with {@link
 * #start(MembershipConfig)}; {@link #close()} leaves gracefully (bounded by the config's
 * graceful-shutdown timeout).
 */
public final class ClusterMember implements AutoCloseable {

  private final HazelcastInstance hazelcast;
  private final MembershipConfig config;

  private ClusterMember(HazelcastInstance hazelcast, MembershipConfig config) {
    this.hazelcast = hazelcast;
    this.config = config;
  }

  private static final System.Logger LOG = System.getLogger(ClusterMember.class.getName());

  /** Starts a member and returns once it has joined a cluster (or formed one alone). */
  public static ClusterMember start(MembershipConfig config) {
    Config hz = hazelcastConfig(config);
    HazelcastInstance instance = config.allowedSources().isEmpty()
        ? Hazelcast.newHazelcastInstance(hz)
        : HazelcastInstanceFactory.newHazelcastInstance(hz, hz.getInstanceName(), new SourceCheckingNodeContext(config));
    return new ClusterMember(instance, config);
  }

  /**
   * Closes every connection (member, client or other protocol) from an address outside {@link
   * MembershipConfig#allowedSources()} before it carries a byte: the open-source edition has no
   * authentication between members, so who may connect is all it can check (docs/security.md).
   * Works through Hazelcast's node extension, an internal API, pinned by the Hazelcast version.
   */
  private static final class SourceCheckingNodeContext extends DefaultNodeContext {
    private final MembershipConfig config;

    SourceCheckingNodeContext(MembershipConfig config) {
      this.config = config;
    }

    @Override
    public NodeExtension createNodeExtension(Node node) {
      return new DefaultNodeExtension(node) {
        @Override
        public Function<EndpointQualifier, ChannelInitializer> createChannelInitializerFn(ServerContext context) {
          Function<EndpointQualifier, ChannelInitializer> initializers = super.createChannelInitializerFn(context);
          return qualifier -> {
            ChannelInitializer initializer = initializers.apply(qualifier);
            return channel -> {
              if (allowed(channel)) {
                initializer.initChannel(channel);
              } else {
                LOG.log(Level.WARNING, "refused a cluster connection from {0}: not in the allowed sources {1}",
                    channel.remoteSocketAddress(), config.allowedSources());
                channel.close();
              }
            };
          };
        }
      };
    }

    private boolean allowed(Channel channel) {
      return channel.remoteSocketAddress() instanceof InetSocketAddress remote && remote.getAddress() != null
          && config.allows(remote.getAddress());
    }
  }

  /** The Hazelcast configuration {@link #start} uses: TCP-IP join only, fast failure detection. */
  static Config hazelcastConfig(MembershipConfig config) {
    Config hz = new Config();
    hz.setClusterName(config.clusterName());
    hz.setInstanceName(config.clusterName() + "@" + config.address());
    // Owlery owns the life cycle: no JVM shutdown hook closing the member under a draining node.
    hz.setProperty("hazelcast.shutdownhook.enabled", "false");
    hz.setProperty("hazelcast.phone.home.enabled", "false");
    // Members are listed explicitly, so there is nothing to wait for before joining.
    hz.setProperty("hazelcast.wait.seconds.before.join", "0");
    hz.setProperty("hazelcast.heartbeat.interval.seconds", Long.toString(config.heartbeatInterval().toSeconds()));
    hz.setProperty("hazelcast.max.no.heartbeat.seconds", Long.toString(config.maxNoHeartbeat().toSeconds()));
    hz.setProperty("hazelcast.heartbeat.failuredetector.type", "deadline");
    hz.setProperty(
        "hazelcast.graceful.shutdown.max.wait", Long.toString(config.gracefulShutdownTimeout().toSeconds()));
    // A member that started before its seeds were reachable forms a cluster of its own; look for
    // such split clusters every 5 s (Hazelcast's defaults: first after 300 s, then every 120 s) so
    // the members merge within seconds; NodeRegistry then registers the merged member's nodes again
    // under its new member UUID (SplitClusterMergeTest).
    hz.setProperty("hazelcast.merge.first.run.delay.seconds", "5");
    hz.setProperty("hazelcast.merge.next.run.delay.seconds", "5");
    // The registry is the only distributed structure: few partitions start and migrate fast.
    hz.setProperty("hazelcast.partition.count", "23");
    hz.getJetConfig().setEnabled(false);
    // Hazelcast's own metrics serve its Management Center, which Owlery does not use (it exports its
    // own through Micrometer); collecting them woke two threads several times a second in every node.
    hz.getMetricsConfig().setEnabled(false);

    NetworkConfig network = hz.getNetworkConfig();
    network.setPort(config.port()).setPortAutoIncrement(false);
    network.setPublicAddress(config.address());
    network.getInterfaces().setEnabled(true).addInterface(config.bindHost());
    // Listen on that interface only, not on every one (Hazelcast's default binds the wildcard).
    hz.setProperty("hazelcast.socket.bind.any", "false");
    JoinConfig join = network.getJoin();
    join.getMulticastConfig().setEnabled(false);
    join.getAutoDetectionConfig().setEnabled(false);
    join.getTcpIpConfig().setEnabled(true).setMembers(config.members()).setConnectionTimeoutSeconds(2);
    return hz;
  }

  /** The Hazelcast instance, for the registry and other distributed structures. */
  public HazelcastInstance hazelcast() {
    return hazelcast;
  }

  public MembershipConfig config() {
    return config;
  }

  /** This member's id in the cluster, stable until it leaves. */
  public UUID memberUuid() {
    return hazelcast.getCluster().getLocalMember().getUuid();
  }

  /** The members currently in the cluster, this one included. */
  public Set<Member> members() {
    return hazelcast.getCluster().getMembers();
  }

  /** Whether the member is still part of a cluster. */
  public boolean isRunning() {
    return hazelcast.getLifecycleService().isRunning();
  }

  /** Leaves at once, without handing over data, as a crash would; for failure tests and fatal errors. */
  public void terminate() {
    hazelcast.getLifecycleService().terminate();
  }

  /** Leaves gracefully: hands over partitions (bounded by the config) and closes connections. */
  @Override
  public void close() {
    hazelcast.shutdown();
  }
}
