package dev.owlery.engine.cuda.ptx;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** {@link PtxKernels} lists exactly the {@code .entry} declarations of the PTX, with their parameter types in order. */
class PtxCatalogueTest {

  private static final Pattern ENTRY = Pattern.compile("\\.visible \\.entry (\\w+)\\(([^)]*)\\)");
  private static final Pattern PARAM = Pattern.compile("\\.param (\\.\\w+) (\\w+)");

  @Test
  void catalogueEntriesAndParameterTypesMatchThePtxEntryDeclarations() {
    for (PtxModule module : PtxModule.values()) {
      Map<String, List<String>> declared = entries(module.ptx());
      Map<String, List<String>> catalogued = new LinkedHashMap<>();
      for (PtxKernel kernel : module.kernels()) {
        catalogued.put(kernel.name(), kernel.params().stream().map(p -> p.type().ptxType()).toList());
      }
      assertThat(catalogued).as("kernels of %s", module).isEqualTo(declared);
    }
  }

  @Test
  void everyModuleLoadsAndDeclaresPtxIsa80ForSm90() {
    for (PtxModule module : PtxModule.values()) {
      String ptx = module.ptx();
      assertThat(ptx).as(module.resourcePath()).contains("\n.version 8.0\n").contains("\n.target sm_90\n");
    }
  }

  /** Entry name to its parameters' PTX types, in declaration order. */
  private static Map<String, List<String>> entries(String ptx) {
    Map<String, List<String>> entries = new LinkedHashMap<>();
    Matcher entry = ENTRY.matcher(ptx);
    while (entry.find()) {
      List<String> types = new ArrayList<>();
      Matcher param = PARAM.matcher(entry.group(2));
      while (param.find()) {
        types.add(param.group(1));
      }
      entries.put(entry.group(1), types);
    }
    return entries;
  }
}
