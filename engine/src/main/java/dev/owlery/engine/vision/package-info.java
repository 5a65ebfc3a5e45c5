/**
 * The vision tower of DESIGN.md §3 (engine, served by the vision worker): the CLIP-style ViT
 * encoder (spec §2) and the visual abstractor (spec §3) that turn one preprocessed image into the
 * visual rows spliced into the decoder's input. Image decoding and preprocessing live in
 * {@code vision.preprocess}.
 */
package dev.owlery.engine.vision;
