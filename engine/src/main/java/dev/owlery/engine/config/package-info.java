/**
 * Model configuration records parsed once from {@code config.json} and
 * {@code generation_config.json} (spec §7, §8), every default resolved and validated here. The
 * image preprocessor's settings live beside the preprocessor ({@code vision.preprocess}).
 */
package dev.owlery.engine.config;
