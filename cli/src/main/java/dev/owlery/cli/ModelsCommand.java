package dev.owlery.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.owlery.client.OwleryClient;
import dev.owlery.proto.v1.Model;
import java.io.PrintWriter;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/** {@code owlery models}: the models a coordinator serves (ListModels), as a table or JSON. */
@Command(name = "models", mixinStandardHelpOptions = true, description = "List the models a running cluster serves.")
public final class ModelsCommand implements Callable<Integer> {

  private static final ObjectMapper JSON = new ObjectMapper();

  @Spec
  CommandSpec spec;

  @Mixin
  ServerQuery query;

  @Override
  public Integer call() {
    boolean json = query.json();
    List<Model> models;
    try (OwleryClient client = query.client()) {
      models = client.listModels();
    }
    PrintWriter out = spec.commandLine().getOut();
    out.print(json ? json(models) + "\n" : table(models));
    out.flush();
    return 0;
  }

  static String table(List<Model> models) {
    TextTable table = new TextTable("NAME", "TYPE", "VOCAB", "MAX_POSITIONS", "IMAGES", "IMAGE_TOKENS", "READY_GROUPS");
    for (Model model : models) {
      table.row(model.getName(), model.getModelType(), model.getVocabSize(), model.getMaxPositions(),
          model.getSupportsImages() ? "yes" : "no", model.getNumImageTokens(), model.getNumReadyGroups());
    }
    return table.toString();
  }

  /**
   * {@code {"models": [{"name", "model_type", "vocab_size", "max_positions", "supports_images",
   * "num_image_tokens", "num_ready_groups"}]}}, the fields of owlery.v1.Model.
   */
  static String json(List<Model> models) {
    ObjectNode root = JSON.createObjectNode();
    ArrayNode list = root.putArray("models");
    for (Model model : models) {
      list.addObject()
          .put("name", model.getName())
          .put("model_type", model.getModelType())
          .put("vocab_size", model.getVocabSize())
          .put("max_positions", model.getMaxPositions())
          .put("supports_images", model.getSupportsImages())
          .put("num_image_tokens", model.getNumImageTokens())
          .put("num_ready_groups", model.getNumReadyGroups());
    }
    return root.toString();
  }
}
