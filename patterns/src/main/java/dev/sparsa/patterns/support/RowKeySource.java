package dev.sparsa.patterns.support;

import dev.sparsa.plan.KeyVisitor;

/**
 * The token-level definition of a pattern on one head: for a query row (index, not position), every
 * key it admits, with the log-weight added to that key's score. Keys may come in any order; a key
 * given twice keeps the weight it was first given with (union semantics: the first component wins).
 * Implementations must only report keys in {@code [0, keyLength)} and must cost O(keys reported).
 */
@FunctionalInterface
public interface RowKeySource {
    /** Reports the keys query row {@code row} admits. */
    void keys(int row, KeyVisitor sink);
}
