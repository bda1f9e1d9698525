package dev.sparsa.patterns.verticalslash;

/** How a vertical-slash selection becomes a key set. */
public enum VsSemantics {
    /**
     * Token-exact: row at position {@code p} admits the selected columns {@code k ∈ V} and the keys
     * {@code p − o} of the selected diagonals {@code o ∈ S}, under causality.
     */
    EXACT,
    /**
     * What MInference's kernel computes: per query tile of rows {@code [r0, r1]}, every key block of
     * the plan's grid that some selected diagonal touches over those rows (keys {@code [p(r0) − o,
     * p(r1) − o]}), plus the selected columns outside those blocks, all under causality. A superset of
     * {@link #EXACT}. (MInference's own kernel starts its slash ranges off the block grid; Sparsa aligns
     * them to its grid.)
     */
    BLOCK_EXPANDED
}
