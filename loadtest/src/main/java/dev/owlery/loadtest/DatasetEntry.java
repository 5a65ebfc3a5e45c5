package dev.owlery.loadtest;

import dev.owlery.proto.v1.Image;
import java.util.List;

/**
 * One request of a dataset file.
 *
 * @param prompt the prompt text (the template is applied to it), or null when {@code promptIds} is set
 * @param promptIds prompt token ids used as given, or null when {@code prompt} is set
 * @param images the pictures, in placeholder order
 * @param maxTokens the request's max_new_tokens, or 0 to take it from {@code expectedOutput} or the default
 * @param expectedOutput the reference answer, or null; its token count is max_new_tokens when {@code maxTokens} is 0
 */
public record DatasetEntry(String prompt, int[] promptIds, List<Image> images, int maxTokens, String expectedOutput) {

  public DatasetEntry {
    images = List.copyOf(images);
  }
}
