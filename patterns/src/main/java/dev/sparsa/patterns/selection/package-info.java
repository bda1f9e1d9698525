/**
 * Selections as index lists: the caller-supplied forms (token lists per query row, block lists per
 * query row, block lists per query block, from {@link dev.sparsa.tensor.IndexTensor}s) and the two
 * layout compilers every per-row selector shares ({@link dev.sparsa.patterns.selection.TokenListLayout},
 * {@link dev.sparsa.patterns.selection.RowBlockLayout}).
 */
package dev.sparsa.patterns.selection;
