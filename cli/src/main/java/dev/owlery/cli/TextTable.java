package dev.owlery.cli;

import java.util.ArrayList;
import java.util.List;

/** Rows of cells printed as left-aligned columns two spaces apart, a header first. */
final class TextTable {

  private final List<List<String>> rows = new ArrayList<>();

  TextTable(String... header) {
    rows.add(List.of(header));
  }

  /** Adds a row; it must have a cell per header column. */
  TextTable row(Object... cells) {
    if (cells.length != rows.getFirst().size()) {
      throw new IllegalArgumentException("a row of %d cells in a table of %d columns".formatted(cells.length,
          rows.getFirst().size()));
    }
    List<String> row = new ArrayList<>(cells.length);
    for (Object cell : cells) {
      row.add(String.valueOf(cell));
    }
    rows.add(row);
    return this;
  }

  @Override
  public String toString() {
    int columns = rows.getFirst().size();
    int[] widths = new int[columns];
    for (List<String> row : rows) {
      for (int c = 0; c < columns; c++) {
        widths[c] = Math.max(widths[c], row.get(c).length());
      }
    }
    StringBuilder out = new StringBuilder();
    for (List<String> row : rows) {
      StringBuilder line = new StringBuilder();
      for (int c = 0; c < columns; c++) {
        String cell = row.get(c);
        line.append(cell).append(c + 1 < columns ? " ".repeat(widths[c] - cell.length() + 2) : "");
      }
      out.append(line.toString().stripTrailing()).append('\n');
    }
    return out.toString();
  }
}
