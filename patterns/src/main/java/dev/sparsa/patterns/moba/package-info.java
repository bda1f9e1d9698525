/** MoBA: per-query block selection gated by mean-pooled keys ({@link dev.sparsa.patterns.moba.MobaSelection}). */
package dev.sparsa.patterns.moba;
