/**
 * The LLaMA-2 decoder with the Modality-Adaptive Module (spec §4) as tensor-parallel slices
 * (DESIGN.md §2, shard worker): attention, MLP, the {@link dev.owlery.engine.decoder.Multiway}
 * modality copies, the in-process {@link dev.owlery.engine.decoder.Decoder} joining N slices, and
 * the {@link dev.owlery.engine.decoder.Generator} prefill + decode loop.
 */
package dev.owlery.engine.decoder;
