/**
 * Text to token ids and back (DESIGN.md §2, the coordinator's tokenizer; spec §5-§7): SentencePiece BPE read from
 * {@code tokenizer.model}, the HF slow {@code LlamaTokenizer} special-token splitting, the {@code <|image|>}
 * placeholder ids, streaming detokenization and the conversation template.
 */
package dev.owlery.engine.tokenizer;
