package dev.owlery.loadtest;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * One plot of the HTML report as inline SVG: axes with round ticks, a line per series (with a
 * circle per point where asked), a legend, and vertical markers. Each series is a {@code <path
 * class="series">} whose {@code data-points} says how many points it joins, so a browser test can
 * count the data a plot shows.
 */
final class SvgPlot {

  static final String[] COLORS = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
      "#7f7f7f", "#bcbd22", "#17becf"};

  private static final int WIDTH = 560;
  private static final int HEIGHT = 300;
  private static final int LEFT = 64;
  private static final int RIGHT = 16;
  private static final int TOP = 32;
  private static final int BOTTOM = 44;

  /** A named line through {@code xs[i], ys[i]}; {@code points} draws a circle at each. */
  record Series(String name, double[] xs, double[] ys, boolean points) {
    Series {
      if (xs.length != ys.length) {
        throw new IllegalArgumentException("a series needs as many x as y values, got " + xs.length + " and "
            + ys.length);
      }
    }
  }

  /** A vertical line at {@code x}, labelled. */
  record Marker(double x, String label) {}

  private final String id;
  private final String title;
  private final String xLabel;
  private final String yLabel;
  private final List<Series> series = new ArrayList<>();
  private final List<Marker> markers = new ArrayList<>();
  private double yMax = Double.NaN;

  SvgPlot(String id, String title, String xLabel, String yLabel) {
    this.id = id;
    this.title = title;
    this.xLabel = xLabel;
    this.yLabel = yLabel;
  }

  SvgPlot add(Series s) {
    series.add(s);
    return this;
  }

  SvgPlot mark(Marker marker) {
    markers.add(marker);
    return this;
  }

  /** Fixes the top of the y axis (e.g. 1 for a CDF); else it is fitted to the data. */
  SvgPlot yMax(double max) {
    this.yMax = max;
    return this;
  }

  String svg() {
    double x0 = Double.POSITIVE_INFINITY;
    double x1 = Double.NEGATIVE_INFINITY;
    double y1 = 0;
    for (Series s : series) {
      for (int i = 0; i < s.xs().length; i++) {
        x0 = Math.min(x0, s.xs()[i]);
        x1 = Math.max(x1, s.xs()[i]);
        y1 = Math.max(y1, s.ys()[i]);
      }
    }
    for (Marker m : markers) {
      x0 = Math.min(x0, m.x());
      x1 = Math.max(x1, m.x());
    }
    if (x0 > x1) {
      x0 = 0;
      x1 = 1;
    }
    x0 = Math.min(x0, 0);
    if (x1 <= x0) {
      x1 = x0 + 1;
    }
    Axis x = Axis.of(x0, x1);
    Axis y = Axis.of(0, Double.isNaN(yMax) ? (y1 > 0 ? y1 : 1) : yMax);
    StringBuilder out = new StringBuilder();
    out.append("<svg id=\"%s\" class=\"plot\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\">\n"
        .formatted(id, WIDTH, HEIGHT, WIDTH, HEIGHT));
    out.append("<text class=\"title\" x=\"%d\" y=\"18\">%s</text>\n".formatted(LEFT, HtmlReport.escape(title)));
    // Axes, ticks and grid.
    for (double t : x.ticks()) {
      double px = px(x, t);
      out.append("<line class=\"grid\" x1=\"%s\" y1=\"%d\" x2=\"%s\" y2=\"%d\"/>".formatted(f(px), TOP, f(px), HEIGHT - BOTTOM));
      out.append("<text class=\"tick\" x=\"%s\" y=\"%d\" text-anchor=\"middle\">%s</text>\n"
          .formatted(f(px), HEIGHT - BOTTOM + 16, x.label(t)));
    }
    for (double t : y.ticks()) {
      double py = py(y, t);
      out.append("<line class=\"grid\" x1=\"%d\" y1=\"%s\" x2=\"%d\" y2=\"%s\"/>".formatted(LEFT, f(py), WIDTH - RIGHT, f(py)));
      out.append("<text class=\"tick\" x=\"%d\" y=\"%s\" text-anchor=\"end\">%s</text>\n"
          .formatted(LEFT - 6, f(py + 4), y.label(t)));
    }
    out.append("<line class=\"axis\" x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/>".formatted(LEFT, HEIGHT - BOTTOM,
        WIDTH - RIGHT, HEIGHT - BOTTOM));
    out.append("<line class=\"axis\" x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/>\n".formatted(LEFT, TOP, LEFT,
        HEIGHT - BOTTOM));
    out.append("<text class=\"label\" x=\"%d\" y=\"%d\" text-anchor=\"middle\">%s</text>\n"
        .formatted((LEFT + WIDTH - RIGHT) / 2, HEIGHT - 6, HtmlReport.escape(xLabel)));
    out.append("<text class=\"label\" transform=\"rotate(-90)\" x=\"%d\" y=\"14\" text-anchor=\"middle\">%s</text>\n"
        .formatted(-(TOP + HEIGHT - BOTTOM) / 2, HtmlReport.escape(yLabel)));
    for (Marker m : markers) {
      double px = px(x, m.x());
      out.append("<line class=\"marker\" x1=\"%s\" y1=\"%d\" x2=\"%s\" y2=\"%d\"/>".formatted(f(px), TOP, f(px),
          HEIGHT - BOTTOM));
      out.append("<text class=\"marker-label\" x=\"%s\" y=\"%d\">%s</text>\n".formatted(f(px + 3), TOP + 10,
          HtmlReport.escape(m.label())));
    }
    for (int k = 0; k < series.size(); k++) {
      Series s = series.get(k);
      String color = COLORS[k % COLORS.length];
      out.append("<g class=\"series-group\" data-series=\"%s\">".formatted(HtmlReport.escape(s.name())));
      StringBuilder d = new StringBuilder();
      for (int i = 0; i < s.xs().length; i++) {
        d.append(i == 0 ? "M" : " L").append(f(px(x, s.xs()[i]))).append(' ').append(f(py(y, s.ys()[i])));
      }
      out.append("<path class=\"series\" data-points=\"%d\" stroke=\"%s\" d=\"%s\"/>".formatted(s.xs().length, color, d));
      if (s.points()) {
        for (int i = 0; i < s.xs().length; i++) {
          out.append("<circle class=\"point\" r=\"3.5\" fill=\"%s\" cx=\"%s\" cy=\"%s\"><title>%s: %s, %s</title></circle>"
              .formatted(color, f(px(x, s.xs()[i])), f(py(y, s.ys()[i])), HtmlReport.escape(s.name()), x.value(s.xs()[i]),
                  y.value(s.ys()[i])));
        }
      }
      // Legend entry; the page's script toggles the series when it is clicked.
      int ly = TOP + 4 + 14 * k;
      out.append("<g class=\"legend\"><rect x=\"%d\" y=\"%d\" width=\"10\" height=\"10\" fill=\"%s\"/><text x=\"%d\" y=\"%d\">%s</text></g>"
          .formatted(WIDTH - RIGHT - 150, ly, color, WIDTH - RIGHT - 136, ly + 9, HtmlReport.escape(s.name())));
      out.append("</g>\n");
    }
    if (series.stream().allMatch(s -> s.xs().length == 0)) {
      out.append("<text class=\"empty\" x=\"%d\" y=\"%d\" text-anchor=\"middle\">no data</text>\n"
          .formatted((LEFT + WIDTH - RIGHT) / 2, (TOP + HEIGHT - BOTTOM) / 2));
    }
    out.append("</svg>\n");
    return out.toString();
  }

  private static double px(Axis x, double value) {
    return LEFT + (value - x.min()) / (x.max() - x.min()) * (WIDTH - LEFT - RIGHT);
  }

  private static double py(Axis y, double value) {
    return HEIGHT - BOTTOM - (value - y.min()) / (y.max() - y.min()) * (HEIGHT - TOP - BOTTOM);
  }

  private static String f(double v) {
    return String.format(Locale.ROOT, "%.1f", v);
  }

  /** An axis from {@code min} to {@code max}, both multiples of its tick step (1, 2 or 5 times a power of ten). */
  record Axis(double min, double max, double step) {
    static Axis of(double lo, double hi) {
      double raw = (hi - lo) / 5;
      double power = Math.pow(10, Math.floor(Math.log10(raw)));
      double step = raw / power <= 1 ? power : raw / power <= 2 ? 2 * power : raw / power <= 5 ? 5 * power : 10 * power;
      return new Axis(Math.floor(lo / step) * step, Math.ceil(hi / step) * step, step);
    }

    List<Double> ticks() {
      List<Double> ticks = new ArrayList<>();
      long n = Math.round((max - min) / step);
      for (long i = 0; i <= n; i++) {
        ticks.add(min + i * step);
      }
      return ticks;
    }

    /** A tick's value with as many decimals as the step has (0.30000000000000004 is 0.3). */
    String label(double tick) {
      int decimals = Math.max(0, (int) -Math.floor(Math.log10(step) + 1e-9));
      return LoadReport.number(java.math.BigDecimal.valueOf(tick).setScale(decimals, java.math.RoundingMode.HALF_UP)
          .doubleValue());
    }

    /** A data value to three significant digits, for a point's tooltip. */
    String value(double v) {
      return Double.isFinite(v) ? LoadReport.number(new java.math.BigDecimal(v).round(new java.math.MathContext(3))
          .doubleValue()) : String.valueOf(v);
    }
  }
}
