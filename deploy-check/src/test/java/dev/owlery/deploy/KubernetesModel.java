package dev.owlery.deploy;

import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.PersistentVolumeClaim;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.networking.v1.NetworkPolicy;
import io.fabric8.kubernetes.api.model.apps.StatefulSet;
import io.fabric8.kubernetes.api.model.autoscaling.v2.HorizontalPodAutoscaler;
import io.fabric8.kubernetes.api.model.policy.v1.PodDisruptionBudget;
import io.fabric8.openshift.api.model.monitoring.v1.PrometheusRule;
import io.fabric8.openshift.api.model.monitoring.v1.ServiceMonitor;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import tools.jackson.databind.DeserializationFeature;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.ObjectMapper;
import tools.jackson.databind.json.JsonMapper;

/**
 * Binds manifests to fabric8's typed Kubernetes model: each object's apiVersion and kind pick its
 * class, a value of the wrong type fails binding, and a field the API does not have fails too
 * (fabric8 keeps unknown fields in each object's {@code additionalProperties}; {@link
 * #unknownFields} lists them, so a misspelt or misplaced field cannot pass unnoticed).
 */
final class KubernetesModel {

  /** The API types deploy/kubernetes uses, by "apiVersion/kind". */
  private static final Map<String, Class<? extends HasMetadata>> TYPES = Map.of(
      "v1/ConfigMap", ConfigMap.class,
      "v1/PersistentVolumeClaim", PersistentVolumeClaim.class,
      "v1/Service", Service.class,
      "apps/v1/Deployment", Deployment.class,
      "apps/v1/StatefulSet", StatefulSet.class,
      "autoscaling/v2/HorizontalPodAutoscaler", HorizontalPodAutoscaler.class,
      "policy/v1/PodDisruptionBudget", PodDisruptionBudget.class,
      "monitoring.coreos.com/v1/ServiceMonitor", ServiceMonitor.class,
      "monitoring.coreos.com/v1/PrometheusRule", PrometheusRule.class,
      "networking.k8s.io/v1/NetworkPolicy", NetworkPolicy.class);

  private static final ObjectMapper MAPPER =
      JsonMapper.builder().enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES).build();

  private KubernetesModel() {}

  /** The typed object for {@code manifest}; throws naming the object when its type is unknown or a value does not bind. */
  static HasMetadata bind(JsonNode manifest) {
    String type = manifest.path("apiVersion").asString() + "/" + manifest.path("kind").asString();
    Class<? extends HasMetadata> model = TYPES.get(type);
    if (model == null) {
      throw new IllegalArgumentException(
          Kustomize.name(manifest) + " is a " + type + ", which has no model here; known: " + TYPES.keySet());
    }
    return MAPPER.treeToValue(manifest, model);
  }

  /** Every field under {@code object} that its API type does not define, as "path.field". */
  static List<String> unknownFields(Object object) {
    List<String> unknown = new ArrayList<>();
    collectUnknown(object, object.getClass().getSimpleName(), unknown);
    return unknown;
  }

  private static void collectUnknown(Object value, String path, List<String> unknown) {
    if (value instanceof List<?> list) {
      for (int i = 0; i < list.size(); i++) {
        collectUnknown(list.get(i), path + "[" + i + "]", unknown);
      }
      return;
    }
    if (value instanceof Map<?, ?> map) {
      map.forEach((key, entry) -> collectUnknown(entry, path + "[" + key + "]", unknown));
      return;
    }
    if (value == null || !value.getClass().getName().startsWith("io.fabric8.")) {
      return;
    }
    for (Method getter : value.getClass().getMethods()) {
      if (getter.getParameterCount() != 0 || Modifier.isStatic(getter.getModifiers())
          || !getter.getName().startsWith("get") || getter.getDeclaringClass() == Object.class) {
        continue;
      }
      Object child = invoke(getter, value);
      if (getter.getName().equals("getAdditionalProperties")) {
        ((Map<?, ?>) child).keySet().forEach(field -> unknown.add(path + "." + field));
      } else {
        collectUnknown(child, path + "." + getter.getName().substring(3), unknown);
      }
    }
  }

  private static Object invoke(Method getter, Object target) {
    try {
      return getter.invoke(target);
    } catch (IllegalAccessException | InvocationTargetException e) {
      throw new IllegalStateException("reading " + getter + " of " + target.getClass().getName(), e);
    }
  }
}
