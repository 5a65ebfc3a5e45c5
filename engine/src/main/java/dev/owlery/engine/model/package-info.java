/**
 * The whole model in one process (DESIGN.md §3: "the engine is a library that runs a whole model
 * in one process too"): loading a model directory, multimodal prompt assembly (spec §5) and
 * in-process generation — the reference the cluster must reproduce.
 */
package dev.owlery.engine.model;
