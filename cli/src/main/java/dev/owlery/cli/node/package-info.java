/**
 * The node roles of DESIGN.md §2 as commands ({@code owlery coordinator}, {@code vision-worker},
 * {@code shard-worker}) and {@code owlery local}, a whole cluster of separate processes on this
 * machine.
 */
package dev.owlery.cli.node;
