package dev.owlery.engine.model;

import dev.owlery.engine.decoder.FinishReason;

/**
 * The result of one generation.
 *
 * @param promptTokenIds the prompt ids ({@code -200} at picture placeholders)
 * @param tokenIds the generated ids, the stop token included when one ended generation
 * @param text the generated text: decoded without special tokens, stripped (spec §6)
 * @param numPromptRows spliced prompt length (ids minus placeholders plus picture rows)
 * @param numImageRows how many of the prompt rows came from pictures
 * @param promptLogits {@code numPromptRows x vocabSize} when logits were kept, else empty
 * @param stepLogits {@code tokenIds.length x vocabSize} when logits were kept, else empty
 */
public record Completion(
    int[] promptTokenIds,
    int[] tokenIds,
    String text,
    FinishReason finishReason,
    int numPromptRows,
    int numImageRows,
    float[] promptLogits,
    float[] stepLogits) {}
