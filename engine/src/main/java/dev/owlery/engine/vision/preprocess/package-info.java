/**
 * Image preprocessing for the vision worker (DESIGN.md §3, engine: "image preprocessing"): image
 * bytes are decoded to RGB as PIL's {@code convert("RGB")} does, then turned into the model's
 * {@code pixel_values} exactly as the official {@code process_images} + {@code CLIPImageProcessor}
 * path does (spec §1), Pillow's fixed-point bicubic resampling included.
 */
package dev.owlery.engine.vision.preprocess;
