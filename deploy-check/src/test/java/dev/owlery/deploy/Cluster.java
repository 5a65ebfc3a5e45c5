package dev.owlery.deploy;

import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.LabelSelector;
import io.fabric8.kubernetes.api.model.PodTemplateSpec;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.apps.StatefulSet;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/** A rendered kustomization as typed Kubernetes objects, with the look-ups the reference checks need. */
record Cluster(String source, List<HasMetadata> objects) {

  /** A Deployment or StatefulSet: what runs pods. */
  record Workload(HasMetadata owner, LabelSelector selector, PodTemplateSpec template, int replicas) {
    String name() {
      return owner.getMetadata().getName();
    }

    Map<String, String> podLabels() {
      return template.getMetadata().getLabels();
    }

    List<Container> containers() {
      return template.getSpec().getContainers();
    }
  }

  /** {@code kustomize build deploy/kubernetes/FOLDER}, bound to the model. */
  static Cluster render(String folder) {
    Path path = DeployFiles.deploy("kubernetes").resolve(folder);
    return new Cluster(folder, Kustomize.build(path).stream().map(KubernetesModel::bind).toList());
  }

  <T extends HasMetadata> List<T> all(Class<T> type) {
    return objects.stream().filter(type::isInstance).map(type::cast).toList();
  }

  <T extends HasMetadata> Optional<T> named(Class<T> type, String name) {
    return all(type).stream().filter(object -> object.getMetadata().getName().equals(name)).findFirst();
  }

  List<Workload> workloads() {
    List<Workload> workloads = new ArrayList<>();
    for (Deployment d : all(Deployment.class)) {
      workloads.add(new Workload(d, d.getSpec().getSelector(), d.getSpec().getTemplate(), d.getSpec().getReplicas()));
    }
    for (StatefulSet s : all(StatefulSet.class)) {
      workloads.add(new Workload(s, s.getSpec().getSelector(), s.getSpec().getTemplate(), s.getSpec().getReplicas()));
    }
    return workloads;
  }

  Workload workload(String name) {
    return workloads().stream().filter(w -> w.name().equals(name)).findFirst()
        .orElseThrow(() -> new AssertionError(source + " has no workload " + name));
  }

  /** The workloads whose pods a Service's selector picks. */
  List<Workload> selectedBy(Service service) {
    return workloads().stream().filter(w -> matches(service.getSpec().getSelector(), w.podLabels())).toList();
  }

  /** The workloads whose pods a label selector picks (matchLabels only: deploy/ uses no expressions). */
  List<Workload> selectedBy(LabelSelector selector) {
    if (selector.getMatchExpressions() != null && !selector.getMatchExpressions().isEmpty()) {
      throw new IllegalArgumentException(source + ": matchExpressions are not checked here; use matchLabels");
    }
    return workloads().stream().filter(w -> matches(selector.getMatchLabels(), w.podLabels())).toList();
  }

  static boolean matches(Map<String, String> selector, Map<String, String> labels) {
    return selector != null && !selector.isEmpty() && labels != null
        && selector.entrySet().stream().allMatch(entry -> entry.getValue().equals(labels.get(entry.getKey())));
  }
}
