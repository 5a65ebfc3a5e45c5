/**
 * Model configuration records parsed once from {@code config.json} and
 * {@code preprocessor_config.json} (spec §8), every default resolved and validated here.
 */
package dev.owlery.engine.config;
