/**
 * Choosing the next token from logits (DESIGN.md §2: the coordinator samples): greedy and HF 4.31
 * sampling (repetition penalty, temperature, top-k, top-p, multinomial; spec §7), reproducible per
 * request from a seed.
 */
package dev.owlery.engine.sampling;
