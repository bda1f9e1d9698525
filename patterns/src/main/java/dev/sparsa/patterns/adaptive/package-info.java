/** Adaptive budgets by cumulative mass (top-p) per head for the block and vertical-slash estimators. */
package dev.sparsa.patterns.adaptive;
