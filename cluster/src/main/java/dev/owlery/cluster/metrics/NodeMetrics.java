package dev.owlery.cluster.metrics;

import io.micrometer.core.instrument.binder.jvm.JvmMemoryMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmThreadMetrics;
import io.micrometer.core.instrument.binder.system.ProcessorMetrics;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;

/** Creates a node's meter registry: Prometheus format, tagged with the node, with JVM metrics. */
public final class NodeMetrics {

  private NodeMetrics() {}

  /**
   * A registry whose every meter carries {@code node=nodeId} and {@code role=role}, with JVM
   * memory, thread and processor meters bound.
   */
  public static PrometheusMeterRegistry newRegistry(String nodeId, String role) {
    PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    registry.config().commonTags("node", nodeId, "role", role);
    new JvmMemoryMetrics().bindTo(registry);
    new JvmThreadMetrics().bindTo(registry);
    new ProcessorMetrics().bindTo(registry);
    return registry;
  }
}
