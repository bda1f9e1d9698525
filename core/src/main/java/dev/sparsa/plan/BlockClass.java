package dev.sparsa.plan;

/** How a predicate treats a rectangle of (query, key) pairs. */
public enum BlockClass {
    /** No pair is admitted: the block need not be visited. */
    EMPTY,
    /** Some pairs may be admitted: visit it and evaluate the predicate per element. */
    PARTIAL,
    /** Every pair is admitted: visit it without an element mask. */
    FULL;

    /** Both must admit. */
    public BlockClass and(BlockClass o) {
        return this == EMPTY || o == EMPTY ? EMPTY : this == FULL && o == FULL ? FULL : PARTIAL;
    }

    /** Either admits. */
    public BlockClass or(BlockClass o) {
        return this == FULL || o == FULL ? FULL : this == EMPTY && o == EMPTY ? EMPTY : PARTIAL;
    }
}
