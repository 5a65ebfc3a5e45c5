package dev.owlery.deploy;

import tools.jackson.databind.JsonNode;
import tools.jackson.databind.node.ArrayNode;
import tools.jackson.databind.node.ObjectNode;

/**
 * RFC 6902 JSON Patch, the operations kustomize's overlays use here: {@code add}, {@code replace}
 * and {@code remove}, with RFC 6901 pointers ({@code ~1} for "/", {@code ~0} for "~"). As the RFC
 * says, the parent of the target must exist, {@code replace} and {@code remove} need the target.
 */
final class JsonPatch {

  private JsonPatch() {}

  /** Applies {@code operations} (a list of {op, path, value}) to {@code document} in place. */
  static void apply(ObjectNode document, JsonNode operations, String source) {
    if (!operations.isArray()) {
      throw new IllegalArgumentException(source + ": a patch must be a JSON 6902 list of operations. Given: " + operations);
    }
    for (JsonNode operation : operations) {
      String op = operation.path("op").asString();
      String path = operation.path("path").asString();
      if (!path.startsWith("/")) {
        throw new IllegalArgumentException(source + ": path must start with '/'. Given: '" + path + "'");
      }
      String[] tokens = path.substring(1).split("/", -1);
      JsonNode parent = document;
      for (int i = 0; i < tokens.length - 1; i++) {
        parent = child(parent, unescape(tokens[i]));
        if (parent == null) {
          throw new IllegalArgumentException(source + ": " + op + " " + path + ": no '" + unescape(tokens[i]) + "' in the document");
        }
      }
      String last = unescape(tokens[tokens.length - 1]);
      switch (op) {
        case "add" -> add(parent, last, operation.required("value"), source, path);
        case "replace" -> {
          requireTarget(parent, last, source, op, path);
          remove(parent, last);
          add(parent, last, operation.required("value"), source, path);
        }
        case "remove" -> {
          requireTarget(parent, last, source, op, path);
          remove(parent, last);
        }
        default -> throw new IllegalArgumentException(source + ": operation '" + op + "' is not one of add, replace, remove");
      }
    }
  }

  private static String unescape(String token) {
    return token.replace("~1", "/").replace("~0", "~");
  }

  private static JsonNode child(JsonNode parent, String token) {
    if (parent instanceof ObjectNode object) {
      return object.get(token);
    }
    if (parent instanceof ArrayNode array && token.matches("\\d+") && Integer.parseInt(token) < array.size()) {
      return array.get(Integer.parseInt(token));
    }
    return null;
  }

  private static void requireTarget(JsonNode parent, String last, String source, String op, String path) {
    if (child(parent, last) == null) {
      throw new IllegalArgumentException(source + ": " + op + " " + path + ": the target does not exist");
    }
  }

  private static void add(JsonNode parent, String last, JsonNode value, String source, String path) {
    if (parent instanceof ObjectNode object) {
      object.set(last, value.deepCopy());
    } else if (parent instanceof ArrayNode array && last.equals("-")) {
      array.add(value.deepCopy());
    } else if (parent instanceof ArrayNode array && last.matches("\\d+") && Integer.parseInt(last) <= array.size()) {
      array.insert(Integer.parseInt(last), value.deepCopy());
    } else {
      throw new IllegalArgumentException(source + ": add " + path + ": cannot add '" + last + "' to " + parent.getNodeType());
    }
  }

  private static void remove(JsonNode parent, String last) {
    if (parent instanceof ObjectNode object) {
      object.remove(last);
    } else {
      ((ArrayNode) parent).remove(Integer.parseInt(last));
    }
  }
}
