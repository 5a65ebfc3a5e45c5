package dev.owlery.coordinator.testing;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;

/** One scrape of a node's Prometheus endpoint, read the way a dashboard would. */
public final class PrometheusScrape {

  private final List<String> lines;

  private PrometheusScrape(List<String> lines) {
    this.lines = lines;
  }

  /** GETs {@code url} (a node's /metrics); fails the test on anything but 200. */
  public static PrometheusScrape of(String url) {
    try (HttpClient http = HttpClient.newHttpClient()) {
      HttpResponse<String> response = http.send(HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(10))
          .build(), HttpResponse.BodyHandlers.ofString());
      if (response.statusCode() != 200) {
        throw new AssertionError("GET " + url + " answered " + response.statusCode());
      }
      return new PrometheusScrape(response.body().lines().filter(line -> !line.startsWith("#")).toList());
    } catch (IOException e) {
      throw new UncheckedIOException("GET " + url + " failed", e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AssertionError("interrupted while scraping " + url, e);
    }
  }

  /** The sum of every series named {@code name} (any labels); fails when there is none. */
  public double sum(String name) {
    List<String> series = lines.stream().filter(line -> line.startsWith(name + "{") || line.startsWith(name + " "))
        .toList();
    if (series.isEmpty()) {
      throw new AssertionError("no series " + name + " in the scrape:\n" + String.join("\n", lines));
    }
    return series.stream().mapToDouble(line -> Double.parseDouble(line.substring(line.lastIndexOf(' ') + 1))).sum();
  }

  /** The value of the series {@code name} whose {@code label} is {@code value}; 0 when there is none (not yet counted). */
  public double value(String name, String label, String value) {
    String selector = label + "=\"" + value + "\"";
    return lines.stream().filter(line -> line.startsWith(name + "{") && line.substring(0, line.indexOf('}')).contains(selector))
        .mapToDouble(line -> Double.parseDouble(line.substring(line.lastIndexOf(' ') + 1))).sum();
  }

  /** The metric names of every series, e.g. {@code owlery_step_duration_seconds_bucket}. */
  public Set<String> names() {
    return lines.stream().filter(line -> !line.isBlank()).map(line -> line.split("[{ ]", 2)[0])
        .collect(Collectors.toCollection(TreeSet::new));
  }
}
