package dev.owlery.deploy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.owlery.deploy.Cluster.Workload;
import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.ContainerPort;
import io.fabric8.kubernetes.api.model.EnvVar;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.IntOrString;
import io.fabric8.kubernetes.api.model.PersistentVolumeClaim;
import io.fabric8.kubernetes.api.model.Probe;
import io.fabric8.kubernetes.api.model.Quantity;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.api.model.ServicePort;
import io.fabric8.kubernetes.api.model.Volume;
import io.fabric8.kubernetes.api.model.VolumeMount;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.apps.StatefulSet;
import io.fabric8.kubernetes.api.model.autoscaling.v2.HorizontalPodAutoscaler;
import io.fabric8.kubernetes.api.model.networking.v1.NetworkPolicy;
import io.fabric8.kubernetes.api.model.networking.v1.NetworkPolicyIngressRule;
import io.fabric8.kubernetes.api.model.networking.v1.NetworkPolicyPeer;
import io.fabric8.kubernetes.api.model.networking.v1.NetworkPolicyPort;
import io.fabric8.kubernetes.api.model.policy.v1.PodDisruptionBudget;
import io.fabric8.openshift.api.model.monitoring.v1.ServiceMonitor;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import picocli.CommandLine.ParseResult;

/**
 * deploy/kubernetes as kustomize renders it (base and both overlays): every object is a valid
 * Kubernetes API object, every reference between objects resolves, and every node's arguments
 * are flags the owlery command accepts, consistent with the ports and names around them.
 */
class KubernetesManifestsTest {

  private static final String MODEL_PATH = "/models/owl2";
  private static final Pattern ENV_REFERENCE = Pattern.compile("\\$\\(([A-Z_][A-Z0-9_]*)\\)");

  static Stream<String> kustomizations() {
    return Stream.of("base", "overlays/cpu", "overlays/gpu");
  }

  @ParameterizedTest
  @MethodSource("kustomizations")
  void everyObjectIsAKubernetesApiObjectWithOnlyTheFieldsItsTypeHas(String folder) {
    Cluster cluster = Cluster.render(folder);
    assertThat(cluster.objects()).hasSizeGreaterThanOrEqualTo(14);
    Set<String> names = new HashSet<>();
    for (HasMetadata object : cluster.objects()) {
      String id = object.getKind() + "/" + object.getMetadata().getName();
      assertThat(names.add(id)).as("%s appears once", id).isTrue();
      assertThat(KubernetesModel.unknownFields(object)).as("fields %s does not have", id).isEmpty();
      assertThat(object.getMetadata().getLabels()).as("%s labels", id).containsEntry("app.kubernetes.io/part-of", "owlery");
    }
    for (Workload workload : cluster.workloads()) {
      for (Container container : workload.containers()) {
        Map<String, Quantity> requests = container.getResources().getRequests();
        Map<String, Quantity> limits = container.getResources().getLimits();
        assertThat(requests).as("%s requests", workload.name()).containsKeys("cpu", "memory");
        assertThat(limits).as("%s limits", workload.name()).containsKey("memory");
        Stream.concat(requests.values().stream(), limits.values().stream()).forEach(Quantity::getAmountInBytes);
        assertThat(limits.get("memory")).as("%s: memory request = limit", workload.name()).isEqualTo(requests.get("memory"));
      }
    }
  }

  @Test
  void aKustomizationUsingWhatTheRendererDoesNotApplyIsRefusedNotIgnored() throws Exception {
    Path folder = Files.createTempDirectory("kustomization");
    Files.writeString(folder.resolve("kustomization.yaml"), "resources: []\nnamePrefix: x-\n");
    assertThatThrownBy(() -> Kustomize.build(folder))
        .hasMessageContaining("uses 'namePrefix', which the test's renderer does not apply");
  }

  @ParameterizedTest
  @MethodSource("kustomizations")
  void everySelectorPortVolumeAndTargetResolves(String folder) {
    Cluster cluster = Cluster.render(folder);
    for (Workload workload : cluster.workloads()) {
      assertThat(cluster.selectedBy(workload.selector())).as("%s's selector picks its own pods only", workload.name())
          .containsExactly(workload);
      Map<String, Volume> volumes = new HashMap<>();
      workload.template().getSpec().getVolumes().forEach(v -> volumes.put(v.getName(), v));
      for (Volume volume : volumes.values()) {
        if (volume.getPersistentVolumeClaim() != null) {
          assertThat(cluster.named(PersistentVolumeClaim.class, volume.getPersistentVolumeClaim().getClaimName()))
              .as("%s volume %s's claim", workload.name(), volume.getName()).isPresent();
        }
        if (volume.getConfigMap() != null) {
          assertThat(cluster.named(ConfigMap.class, volume.getConfigMap().getName())).isPresent();
        }
        assertThat(volume.getSecret()).as("%s: no Secret exists to mount", workload.name()).isNull();
      }
      for (Container container : workload.containers()) {
        for (VolumeMount mount : container.getVolumeMounts()) {
          assertThat(volumes).as("%s mounts %s", workload.name(), mount.getName()).containsKey(mount.getName());
        }
        Set<Integer> ports = new HashSet<>(container.getPorts().stream().map(ContainerPort::getContainerPort).toList());
        for (Probe probe : List.of(container.getStartupProbe(), container.getReadinessProbe(), container.getLivenessProbe())) {
          assertThat(probe.getGrpc()).as("%s probes the gRPC health service", workload.name()).isNotNull();
          assertThat(ports).as("%s's probe port", workload.name()).contains(probe.getGrpc().getPort());
        }
        for (EnvVar env : container.getEnv()) {
          if (env.getValueFrom() != null) {
            assertThat(env.getValueFrom().getConfigMapKeyRef()).isNull();
            assertThat(env.getValueFrom().getSecretKeyRef()).isNull();
          }
        }
      }
    }
    for (Service service : cluster.all(Service.class)) {
      List<Workload> selected = cluster.selectedBy(service);
      assertThat(selected).as("pods of Service %s", service.getMetadata().getName()).isNotEmpty();
      for (ServicePort port : service.getSpec().getPorts()) {
        for (Workload workload : selected) {
          assertThat(containerPort(workload, port.getTargetPort()))
              .as("Service %s port %s in %s", service.getMetadata().getName(), port.getName(), workload.name())
              .isEqualTo(port.getPort());
        }
      }
    }
    for (StatefulSet set : cluster.all(StatefulSet.class)) {
      Service governing = cluster.named(Service.class, set.getSpec().getServiceName()).orElseThrow();
      assertThat(governing.getSpec().getClusterIP()).as("%s's governing Service is headless", set.getMetadata().getName()).isEqualTo("None");
      assertThat(cluster.selectedBy(governing)).extracting(Workload::name).contains(set.getMetadata().getName());
    }
    for (PodDisruptionBudget budget : cluster.all(PodDisruptionBudget.class)) {
      assertThat(cluster.selectedBy(budget.getSpec().getSelector())).as("pods of budget %s", budget.getMetadata().getName()).hasSize(1);
    }
    assertThat(cluster.workloads()).allSatisfy(workload -> assertThat(cluster.all(PodDisruptionBudget.class))
        .as("a budget for %s", workload.name())
        .anyMatch(budget -> cluster.selectedBy(budget.getSpec().getSelector()).contains(workload)));
    for (HorizontalPodAutoscaler hpa : cluster.all(HorizontalPodAutoscaler.class)) {
      assertThat(hpa.getSpec().getScaleTargetRef().getKind()).isEqualTo("Deployment");
      assertThat(cluster.named(Deployment.class, hpa.getSpec().getScaleTargetRef().getName())).isPresent();
    }
    for (ServiceMonitor monitor : cluster.all(ServiceMonitor.class)) {
      List<Service> monitored = monitored(cluster, monitor);
      assertThat(monitored).isNotEmpty();
      for (var endpoint : monitor.getSpec().getEndpoints()) {
        assertThat(monitored).allSatisfy(service -> assertThat(service.getSpec().getPorts()).extracting(ServicePort::getName)
            .as("ServiceMonitor port in %s", service.getMetadata().getName()).contains(endpoint.getPort()));
      }
    }
  }

  /**
   * Hazelcast's membership port has no TLS (docs/security.md): every node is isolated by a
   * NetworkPolicy, and a rule letting in anything but Owlery's own pods names its ports, which are
   * never the membership port, nor the internal gRPC port of a worker.
   */
  @ParameterizedTest
  @MethodSource("kustomizations")
  void onlyOwleryPodsReachTheMembershipPortAndTheInternalLinks(String folder) {
    Cluster cluster = Cluster.render(folder);
    for (Workload workload : cluster.workloads()) {
      List<NetworkPolicy> isolating = cluster.all(NetworkPolicy.class).stream()
          .filter(policy -> cluster.selectedBy(policy.getSpec().getPodSelector()).contains(workload)).toList();
      assertThat(isolating).as("NetworkPolicies selecting %s", workload.name()).isNotEmpty()
          .allSatisfy(policy -> assertThat(policy.getSpec().getPolicyTypes()).contains("Ingress"));
      int membershipPort = containerPort(workload, new IntOrString("hazelcast"));
      int grpcPort = containerPort(workload, new IntOrString("grpc"));
      boolean coordinator = "coordinator".equals(workload.podLabels().get("app.kubernetes.io/component"));
      for (NetworkPolicy policy : isolating) {
        for (NetworkPolicyIngressRule rule : policy.getSpec().getIngress()) {
          if (fromOwleryPodsOnly(rule)) {
            continue;
          }
          String where = "%s: a rule of %s open beyond Owlery's pods".formatted(workload.name(), policy.getMetadata().getName());
          assertThat(rule.getPorts()).as("%s names its ports", where).isNotEmpty();
          for (NetworkPolicyPort port : rule.getPorts()) {
            int number = containerPort(workload, port.getPort());
            assertThat(number).as(where).isNotEqualTo(membershipPort);
            if (!coordinator) {
              assertThat(number).as(where).isNotEqualTo(grpcPort);
            }
          }
        }
      }
    }
  }

  private static boolean fromOwleryPodsOnly(NetworkPolicyIngressRule rule) {
    List<NetworkPolicyPeer> from = rule.getFrom();
    return from != null && !from.isEmpty() && from.stream().allMatch(peer -> peer.getIpBlock() == null
        && peer.getNamespaceSelector() == null && peer.getPodSelector() != null
        && "owlery".equals(peer.getPodSelector().getMatchLabels().get("app.kubernetes.io/part-of")));
  }

  @ParameterizedTest
  @MethodSource("kustomizations")
  void everyNodeIsScrapedOnce(String folder) {
    Cluster cluster = Cluster.render(folder);
    List<Service> monitored = cluster.all(ServiceMonitor.class).stream().flatMap(m -> monitored(cluster, m).stream()).toList();
    for (Workload workload : cluster.workloads()) {
      assertThat(monitored.stream().filter(service -> cluster.selectedBy(service).contains(workload)))
          .as("monitored Services selecting %s", workload.name()).hasSize(1);
    }
  }

  @ParameterizedTest
  @MethodSource("kustomizations")
  void everyNodeIsGivenFlagsTheOwleryCommandAccepts(String folder) {
    Cluster cluster = Cluster.render(folder);
    for (Workload workload : cluster.workloads()) {
      Container container = workload.containers().getFirst();
      String role = workload.podLabels().get("app.kubernetes.io/component");
      ParseResult parsed = NodeCommands.parse(substituteEnv(workload, container));
      assertThat(NodeCommands.commandClass(parsed)).as("%s's command", workload.name()).isEqualTo(NodeCommands.ROLES.get(role));

      assertThat(container.getArgs()).as("%s listens on and publishes its pod's address", workload.name()).contains("--host=$(POD_IP)");
      assertThat(env(container, "POD_IP").getValueFrom().getFieldRef().getFieldPath()).isEqualTo("status.podIP");
      assertThat(env(container, "POD_NAME").getValueFrom().getFieldRef().getFieldPath()).isEqualTo("metadata.name");
      assertThat(container.getArgs()).contains("--node-id=$(POD_NAME)");
      assertThat((Integer) NodeCommands.option(parsed, "--port")).isEqualTo(containerPort(workload, new IntOrString("grpc")));
      assertThat((Integer) NodeCommands.option(parsed, "--metrics-port")).isEqualTo(containerPort(workload, new IntOrString("metrics")));
      assertThat((Integer) NodeCommands.option(parsed, "--cluster-port")).isEqualTo(containerPort(workload, new IntOrString("hazelcast")));

      List<String> members = NodeCommands.option(parsed, "--members");
      assertThat(members).as("%s's Hazelcast seeds", workload.name()).isNotEmpty();
      for (String member : members) {
        seedIsAStableNameOfAHazelcastPort(cluster, workload, member);
      }

      long heap = heapBytes(env(container, "OWLERY_JAVA_OPTS").getValue());
      long limit = Quantity.getAmountInBytes(container.getResources().getLimits().get("memory")).longValueExact();
      assertThat(heap).as("%s's -Xmx under its memory limit with 1 GiB to spare", workload.name()).isLessThan(limit - (1L << 30));
    }
  }

  @Test
  void coordinatorAndShardsAgreeOnTheGroupAndTheModel() {
    Cluster cluster = Cluster.render("base");
    Workload coordinator = cluster.workload("owlery-coordinator");
    ParseResult parsed = NodeCommands.parse(substituteEnv(coordinator, coordinator.containers().getFirst()));
    int groupSize = NodeCommands.option(parsed, "--group-size");
    StatefulSet shards = cluster.named(StatefulSet.class, "owlery-shard").orElseThrow();
    assertThat(shards.getSpec().getReplicas() % groupSize).as("shard replicas fill whole groups of %d", groupSize).isZero();
    assertThat(shards.getSpec().getPodManagementPolicy()).isEqualTo("Parallel");
    assertThat(NodeCommands.option(parsed, "--model").toString()).isEqualTo(MODEL_PATH);

    PersistentVolumeClaim model = cluster.named(PersistentVolumeClaim.class, "owlery-model").orElseThrow();
    assertThat(model.getSpec().getAccessModes()).containsExactly("ReadOnlyMany");
    for (Workload workload : cluster.workloads()) {
      Volume volume = workload.template().getSpec().getVolumes().stream()
          .filter(v -> v.getPersistentVolumeClaim() != null).findFirst().orElseThrow();
      assertThat(volume.getPersistentVolumeClaim().getReadOnly()).isTrue();
      VolumeMount mount = workload.containers().getFirst().getVolumeMounts().stream()
          .filter(m -> m.getName().equals(volume.getName())).findFirst().orElseThrow();
      assertThat(mount.getMountPath()).as("%s mounts the model where the coordinator names it", workload.name()).isEqualTo(MODEL_PATH);
      assertThat(mount.getReadOnly()).isTrue();
      assertThat(workload.containers().getFirst().getSecurityContext().getReadOnlyRootFilesystem()).isTrue();
      assertThat(workload.template().getSpec().getSecurityContext().getRunAsNonRoot()).isTrue();
    }
    assertThat(shards.getSpec().getTemplate().getSpec().getContainers().getFirst().getArgs())
        .contains("--allow-model-dir=" + MODEL_PATH);
  }

  @Test
  void theOverlaysGiveShardWorkersWholeCoresOrAGpu() {
    Container cpu = shardContainer(Cluster.render("overlays/cpu"));
    assertThat(cpu.getResources().getRequests().get("cpu")).isEqualTo(new Quantity("8"));
    assertThat(cpu.getResources().getLimits().get("cpu")).isEqualTo(new Quantity("8"));
    assertThat(cpu.getResources().getLimits()).doesNotContainKey("nvidia.com/gpu");

    Cluster gpuCluster = Cluster.render("overlays/gpu");
    Container gpu = shardContainer(gpuCluster);
    assertThat(gpu.getResources().getLimits().get("nvidia.com/gpu")).isEqualTo(new Quantity("1"));
    assertThat(gpu.getResources().getRequests().get("nvidia.com/gpu")).isEqualTo(new Quantity("1"));
    var podSpec = gpuCluster.named(StatefulSet.class, "owlery-shard").orElseThrow().getSpec().getTemplate().getSpec();
    assertThat(podSpec.getNodeSelector()).containsEntry("nvidia.com/gpu.present", "true");
    assertThat(podSpec.getTolerations()).anyMatch(t -> t.getKey().equals("nvidia.com/gpu"));

    assertThat(shardContainer(Cluster.render("base")).getResources().getLimits()).doesNotContainKeys("cpu", "nvidia.com/gpu");
  }

  @Test
  void theDashboardConfigMapHoldsTheDashboardFileForGrafanasSidecar() {
    ConfigMap dashboard = Cluster.render("base").named(ConfigMap.class, "owlery-grafana-dashboard").orElseThrow();
    assertThat(dashboard.getMetadata().getLabels()).containsEntry("grafana_dashboard", "1");
    assertThat(dashboard.getData()).containsExactly(Map.entry("owlery-serving.json",
        DeployFiles.text(DeployFiles.deploy("kubernetes/base/dashboards/owlery-serving.json"))));
  }

  /** A --members entry is "SERVICE:PORT" or "POD.SERVICE:PORT" of a Service that finds members before they are ready. */
  private static void seedIsAStableNameOfAHazelcastPort(Cluster cluster, Workload node, String member) {
    String[] hostPort = member.split(":");
    assertThat(hostPort).as("%s: member %s is HOST:PORT", node.name(), member).hasSize(2);
    String[] labels = hostPort[0].split("\\.");
    assertThat(labels.length).as("%s: member %s is SERVICE or POD.SERVICE", node.name(), member).isBetween(1, 2);
    Service service = cluster.named(Service.class, labels[labels.length - 1])
        .orElseThrow(() -> new AssertionError(node.name() + ": member " + member + " names no Service"));
    assertThat(service.getSpec().getClusterIP()).as("%s is headless (pod addresses, no proxy)", member).isEqualTo("None");
    assertThat(service.getSpec().getPublishNotReadyAddresses()).as("%s resolves before its pods are ready", member).isTrue();
    List<Workload> seeds = cluster.selectedBy(service);
    if (labels.length == 2) {
      StatefulSet set = cluster.all(StatefulSet.class).stream()
          .filter(s -> s.getSpec().getServiceName().equals(service.getMetadata().getName())).findFirst()
          .orElseThrow(() -> new AssertionError(member + ": " + labels[1] + " governs no StatefulSet"));
      String prefix = set.getMetadata().getName() + "-";
      assertThat(labels[0]).as("%s names a pod of %s", member, set.getMetadata().getName()).startsWith(prefix);
      assertThat(Integer.parseInt(labels[0].substring(prefix.length()))).isLessThan(set.getSpec().getReplicas());
      seeds = List.of(cluster.workload(set.getMetadata().getName()));
    }
    int port = Integer.parseInt(hostPort[1]);
    ServicePort servicePort = service.getSpec().getPorts().stream().filter(p -> p.getPort() == port).findFirst()
        .orElseThrow(() -> new AssertionError(member + ": Service has no port " + port));
    for (Workload seed : seeds) {
      ParseResult parsed = NodeCommands.parse(substituteEnv(seed, seed.containers().getFirst()));
      assertThat((Integer) NodeCommands.option(parsed, "--cluster-port")).as("%s: the seed's Hazelcast port", member)
          .isEqualTo(containerPort(seed, servicePort.getTargetPort()));
    }
  }

  private static List<Service> monitored(Cluster cluster, ServiceMonitor monitor) {
    return cluster.all(Service.class).stream()
        .filter(service -> Cluster.matches(monitor.getSpec().getSelector().getMatchLabels(), service.getMetadata().getLabels()))
        .toList();
  }

  /** The container port a Service's targetPort (a name or a number) reaches in a workload's pods. */
  private static int containerPort(Workload workload, IntOrString target) {
    for (Container container : workload.containers()) {
      for (ContainerPort port : container.getPorts()) {
        if (target.getIntVal() != null ? port.getContainerPort().equals(target.getIntVal()) : target.getStrVal().equals(port.getName())) {
          return port.getContainerPort();
        }
      }
    }
    throw new AssertionError(workload.name() + " has no container port " + (target.getIntVal() != null ? target.getIntVal() : target.getStrVal()));
  }

  /** The container's args with each $(VAR) replaced as the kubelet would; a reference to an undefined variable fails. */
  private static List<String> substituteEnv(Workload workload, Container container) {
    Map<String, String> values = Map.of("POD_NAME", workload.name() + "-0", "POD_IP", "10.1.2.3");
    List<String> args = new ArrayList<>();
    for (String arg : container.getArgs()) {
      Matcher m = ENV_REFERENCE.matcher(arg);
      StringBuilder substituted = new StringBuilder();
      while (m.find()) {
        env(container, m.group(1));
        m.appendReplacement(substituted, Matcher.quoteReplacement(values.getOrDefault(m.group(1), m.group(1).toLowerCase())));
      }
      m.appendTail(substituted);
      args.add(substituted.toString());
    }
    return args;
  }

  private static EnvVar env(Container container, String name) {
    return container.getEnv().stream().filter(e -> e.getName().equals(name)).findFirst()
        .orElseThrow(() -> new AssertionError(container.getName() + " refers to $(" + name + ") but defines no such env"));
  }

  private static long heapBytes(String javaOptions) {
    Matcher m = Pattern.compile("-Xmx(\\d+)([gGmM])").matcher(javaOptions);
    assertThat(m.find()).as("-Xmx in OWLERY_JAVA_OPTS '%s'", javaOptions).isTrue();
    return Long.parseLong(m.group(1)) << (m.group(2).equalsIgnoreCase("g") ? 30 : 20);
  }

  private static Container shardContainer(Cluster cluster) {
    return cluster.named(StatefulSet.class, "owlery-shard").orElseThrow().getSpec().getTemplate().getSpec().getContainers().getFirst();
  }
}
